package ipc

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Region is a shared memory mapping backed by an anonymous memfd. Every
// shared-memory object (queues, semaphores, mutexes, shm, the status table)
// lives in one. The memfd is passed to children by descriptor, so nothing
// appears in /dev/shm and nothing can be left behind there.
type Region struct {
	File *os.File // the memfd; hand it to children through ExtraFiles
	Mem  []byte   // MAP_SHARED mapping of the whole file
}

// NewRegion creates a zero-filled region of size bytes. name only labels the
// memfd (visible in /proc/PID/fd as "memfd:ipcscript:NAME").
func NewRegion(name string, size int) (*Region, error) {
	if size <= 0 {
		return nil, fmt.Errorf("region %q: size %d must be positive", name, size)
	}
	fd, err := unix.MemfdCreate("ipcscript:"+name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:ipcscript:"+name)
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, fmt.Errorf("region %q: %w", name, err)
	}
	r, err := mapRegion(f, size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("region %q: %w", name, err)
	}
	return r, nil
}

// OpenRegion maps an inherited memfd. Its size is taken from the file.
func OpenRegion(f *os.File) (*Region, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return mapRegion(f, int(st.Size()))
}

func mapRegion(f *os.File, size int) (*Region, error) {
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return &Region{File: f, Mem: mem}, nil
}

// U32 returns a pointer to the 4-byte aligned word at off.
func (r *Region) U32(off int) *uint32 {
	_ = r.Mem[off+3]
	return (*uint32)(unsafe.Pointer(&r.Mem[off]))
}

// U64 returns a pointer to the 8-byte aligned word at off.
func (r *Region) U64(off int) *uint64 {
	_ = r.Mem[off+7]
	return (*uint64)(unsafe.Pointer(&r.Mem[off]))
}

// Close unmaps the region and closes the memfd. The memory itself lives on
// while any other process still maps it.
func (r *Region) Close() error {
	var err error
	if r.Mem != nil {
		err = unix.Munmap(r.Mem)
		r.Mem = nil
	}
	if r.File != nil {
		if e := r.File.Close(); err == nil {
			err = e
		}
		r.File = nil
	}
	return err
}
