package ipc

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Region is a shared memory mapping backed by an anonymous memfd. Every
// shared-memory object (queues, semaphores, mutexes, shm, the status table)
// lives in one. The memfd is passed to children by descriptor, so nothing
// appears in /dev/shm and nothing can be left behind there.
type Region struct {
	File  *os.File // the memfd; hand it to children through ExtraFiles
	Mem   []byte   // MAP_SHARED mapping of the whole file
	space *Space   // set when Mem lies in a Space: unmapped with it
}

// NewRegion creates a zero-filled region of size bytes. name only labels the
// memfd (visible in /proc/PID/fd as "memfd:ipcscript:NAME").
func NewRegion(name string, size int) (*Region, error) { return NewRegionIn(nil, name, size) }

// NewRegionIn is NewRegion with the mapping placed in space, when space is
// not nil and has room left (else mapped on its own).
func NewRegionIn(space *Space, name string, size int) (*Region, error) {
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
	var r *Region
	if space != nil {
		var mem []byte
		if mem, err = space.mapFile(fd, size); mem != nil {
			r = &Region{File: f, Mem: mem, space: space}
		}
	}
	if r == nil && err == nil { // no space, or no room left in it
		r, err = mapRegion(f, size)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("region %q: %w", name, err)
	}
	return r, nil
}

// Space is address space reserved for regions mapped side by side
// (NewRegionIn), and unmapped together, with one munmap, once the last of
// them is closed and the reserver is done with it. Each munmap in a
// process with threads on several CPUs flushes every one of those CPUs'
// TLBs, by an interprocessor interrupt each, which in a VM is a VM exit
// on both sides: unmapping a 64-process run's 65 inboxes one by one was
// ~50 µs each on the Firecracker VM of 2026-12-03, in the supervisor's
// serial end of the run. A region in a Space keeps its memory mapped until
// the Space goes, so a Space suits regions that end together.
type Space struct {
	mu   sync.Mutex
	base unsafe.Pointer
	size int
	used int
	refs int // the reserver's hold, and one per region mapped in it
}

// ReserveSpace reserves size bytes of address space (no memory).
func ReserveSpace(size int) (*Space, error) {
	size = (size + 4095) &^ 4095
	if size <= 0 {
		return nil, fmt.Errorf("space of %d bytes", size)
	}
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(size), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return &Space{base: p, size: size, refs: 1}, nil
}

// Done lets go of the reserver's hold: the space is unmapped when every
// region in it is closed (at once when none is left).
func (s *Space) Done() { s.release() }

func (s *Space) release() {
	s.mu.Lock()
	s.refs--
	last := s.refs == 0
	s.mu.Unlock()
	if last {
		unix.MunmapPtr(s.base, uintptr(s.size))
	}
}

// mapFile maps size bytes of the memfd fd, shared, at the space's next
// free page; nil when the space has no room left or is gone.
func (s *Space) mapFile(fd, size int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := (size + 4095) &^ 4095
	if s.refs == 0 || n > s.size-s.used {
		return nil, nil
	}
	p, err := unix.MmapPtr(fd, 0, unsafe.Add(s.base, s.used), uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_FIXED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	s.used += n
	s.refs++
	return unsafe.Slice((*byte)(p), size), nil
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
	if r.space != nil {
		r.Mem = nil
		r.space.release()
		r.space = nil
	} else if r.Mem != nil {
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
