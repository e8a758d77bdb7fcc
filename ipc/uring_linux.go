package ipc

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A held pipe read or write in one system call. A held wait (waitHeld)
// is a ppoll and then the read or write: two system calls where C's
// blocking read(2) or write(2) is one, and a pipe of 64 KiB chunks waits
// on nearly every chunk on both sides. A plain read(2) or write(2) that
// sleeps cannot hold the P (Syscall lets sysmon hand it to another
// thread; RawSyscall would hold it with no bound, the signal that ends a
// held ppoll restarting the read). An io_uring request can: one
// io_uring_enter submits the read or write and waits for it to complete,
// the kernel doing it when the pipe has data or room (no O_NONBLOCK on the
// shared descriptor: the request does not wait itself, its poll does), and
// a signal ends the wait with EINTR, after which the request is cancelled
// (or found done) before anything else runs: its buffer is never the
// kernel's while this goroutine is off its thread.
//
// Rings are made on first use (io_uring_setup, two mmaps) and kept for
// the process in a small free list; where io_uring_setup fails (an old
// kernel, a seccomp policy, kernel.io_uring_disabled) held waits stay
// ppoll + read/write.

const (
	uringOpCancel = 14 // IORING_OP_ASYNC_CANCEL
	uringOpRead   = 22 // IORING_OP_READ
	uringOpWrite  = 23 // IORING_OP_WRITE

	uringEnterGetEvents = 1          // IORING_ENTER_GETEVENTS
	uringFeatSingleMmap = 1          // IORING_FEAT_SINGLE_MMAP
	uringOffSQRing      = 0          // IORING_OFF_SQ_RING
	uringOffSQEs        = 0x10000000 // IORING_OFF_SQES

	uringUserOp, uringUserCancel = 1, 2 // user_data of the request and of its cancel
)

// uringParams is struct io_uring_params.
type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		resv2                                                           uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		resv2                                                           uint64
	}
}

// uringSQE is struct io_uring_sqe (64 bytes; flags, ioprio, rw_flags
// and the rest zero).
type uringSQE struct {
	opcode    uint8
	_         uint8
	_         uint16
	fd        int32
	off, addr uint64
	len       uint32
	_         uint32
	userData  uint64
	_         [3]uint64
}

// The kernel's sizes: 64-byte SQEs, 16-byte CQEs, 120-byte parameters.
var (
	_ [64 - unsafe.Sizeof(uringSQE{})]byte
	_ [unsafe.Sizeof(uringSQE{}) - 64]byte
	_ [16 - unsafe.Sizeof(uringCQE{})]byte
	_ [unsafe.Sizeof(uringCQE{}) - 16]byte
	_ [120 - unsafe.Sizeof(uringParams{})]byte
	_ [unsafe.Sizeof(uringParams{}) - 120]byte
)

// uringCQE is struct io_uring_cqe (16 bytes).
type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// uringMem is an io_uring and its two mappings (the rings, one mapping
// with IORING_FEAT_SINGLE_MMAP, and the submission entries), set up alike
// for both users in this package: held pipe reads and writes (uring,
// below) and the bell (bell_linux.go).
type uringMem struct {
	fd             int
	ring, sqeMem   []byte
	sqHead, sqTail *uint32
	sqMask         uint32
	sqArr          unsafe.Pointer
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           unsafe.Pointer
}

// newUringMem makes an io_uring of at least entries submission entries.
func newUringMem(entries uint32) (*uringMem, error) {
	var p uringParams
	fd, _, e := unix.RawSyscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		return nil, e
	}
	m := &uringMem{fd: int(fd)}
	if p.features&uringFeatSingleMmap == 0 || p.sqEntries < entries {
		m.close()
		return nil, unix.ENOSYS
	}
	size := max(int(p.sqOff.array)+4*int(p.sqEntries), int(p.cqOff.cqes)+int(unsafe.Sizeof(uringCQE{}))*int(p.cqEntries))
	var err error
	if m.ring, err = unix.Mmap(m.fd, uringOffSQRing, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		m.close()
		return nil, err
	}
	if m.sqeMem, err = unix.Mmap(m.fd, uringOffSQEs, int(unsafe.Sizeof(uringSQE{}))*int(p.sqEntries), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		m.close()
		return nil, err
	}
	at := func(off uint32) unsafe.Pointer { return unsafe.Pointer(&m.ring[off]) }
	m.sqHead, m.sqTail = (*uint32)(at(p.sqOff.head)), (*uint32)(at(p.sqOff.tail))
	m.sqMask, m.sqArr = *(*uint32)(at(p.sqOff.ringMask)), at(p.sqOff.array)
	m.cqHead, m.cqTail = (*uint32)(at(p.cqOff.head)), (*uint32)(at(p.cqOff.tail))
	m.cqMask, m.cqes = *(*uint32)(at(p.cqOff.ringMask)), at(p.cqOff.cqes)
	return m, nil
}

// close unmaps what was mapped and closes the ring.
func (m *uringMem) close() {
	if m.ring != nil {
		unix.Munmap(m.ring)
	}
	if m.sqeMem != nil {
		unix.Munmap(m.sqeMem)
	}
	unix.Close(m.fd)
}

// sqe is submission entry i's memory (64 bytes).
func (m *uringMem) sqe(i uint32) unsafe.Pointer {
	return unsafe.Pointer(&m.sqeMem[uintptr(i)*unsafe.Sizeof(uringSQE{})])
}

// push queues submission entry i: the kernel takes it at the next
// io_uring_enter.
func (m *uringMem) push(i uint32) {
	tail := atomic.LoadUint32(m.sqTail)
	*(*uint32)(unsafe.Add(m.sqArr, 4*uintptr(tail&m.sqMask))) = i
	atomic.StoreUint32(m.sqTail, tail+1)
}

// pending is how many queued entries the kernel has not taken yet.
func (m *uringMem) pending() uint32 {
	return atomic.LoadUint32(m.sqTail) - atomic.LoadUint32(m.sqHead)
}

// reap takes the completions posted so far; it reports the result of
// request want (its user_data) among them.
func (m *uringMem) reap(want uint64) (res int32, got bool) {
	head := atomic.LoadUint32(m.cqHead)
	for tail := atomic.LoadUint32(m.cqTail); head != tail; head++ {
		c := (*uringCQE)(unsafe.Add(m.cqes, uintptr(head&m.cqMask)*unsafe.Sizeof(uringCQE{})))
		if c.userData == want {
			res, got = c.res, true
		}
	}
	atomic.StoreUint32(m.cqHead, head)
	return res, got
}

// uring is a ring with room for a request and its cancel.
type uring struct {
	*uringMem
	sqes   *[2]uringSQE
	broken bool // a request could not be cancelled: never reuse
}

var (
	uringOff   atomic.Bool // io_uring_setup failed once: do not try again
	uringMu    sync.Mutex
	uringSpare []*uring
	// uringLeaked keeps the memory of requests that could not be
	// cancelled (a ring that failed) from being freed and reused. That rw
	// stores its p here also makes p escape (go build -gcflags=-m:
	// "leaking param: p", up to Stream.ReadInto and Write): a request's
	// memory is always on the heap, which does not move, never on a
	// goroutine stack, which moves when it grows.
	uringLeaked [][]byte
)

// getUring takes a ring from the free list or makes one; nil where
// io_uring is not available.
func getUring() *uring {
	if uringOff.Load() {
		return nil
	}
	uringMu.Lock()
	if n := len(uringSpare); n > 0 {
		r := uringSpare[n-1]
		uringSpare = uringSpare[:n-1]
		uringMu.Unlock()
		return r
	}
	uringMu.Unlock()
	r, err := newUring()
	if err != nil {
		uringOff.Store(true)
		return nil
	}
	return r
}

// putUring gives r back to the free list (unless it is broken).
func putUring(r *uring) {
	if r.broken {
		return
	}
	uringMu.Lock()
	uringSpare = append(uringSpare, r)
	uringMu.Unlock()
}

func newUring() (*uring, error) {
	m, err := newUringMem(2)
	if err != nil {
		return nil, err
	}
	return &uring{uringMem: m, sqes: (*[2]uringSQE)(m.sqe(0))}, nil
}

// enter submits what is queued and waits for a completion: EINTR when a
// signal came first.
func (r *uring) enter() unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(r.pending()), 1, uringEnterGetEvents, 0, 0)
	return e
}

// rw reads into p (op uringOpRead) or writes p (uringOpWrite) on fd,
// holding the P, until it is done or a signal comes (then the request is
// cancelled, or found done). It returns the system call's result (bytes,
// 0 at the end of a read, -errno) and true, or false when a signal ended
// the wait with nothing done, or the ring failed (r.broken).
func (r *uring) rw(op uint8, fd int, p []byte) (int, bool) {
	r.sqes[0] = uringSQE{opcode: op, fd: int32(fd), off: ^uint64(0),
		addr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(p)))), len: uint32(len(p)), userData: uringUserOp}
	r.push(0)
	for {
		e := r.enter()
		if res, done := r.reap(uringUserOp); done {
			runtime.KeepAlive(p)
			return int(res), true
		}
		if e == 0 || (e == unix.EINTR && r.pending() > 0) { // woken early, or not submitted yet
			continue
		}
		// A signal (or a failure): cancel, and wait for the request's own
		// completion, so that p is not the kernel's when this returns.
		res, ok := r.cancel()
		if r.broken {
			uringMu.Lock()
			uringLeaked = append(uringLeaked, p) // the kernel may write it still
			uringMu.Unlock()
		}
		runtime.KeepAlive(p)
		if ok && res >= 0 {
			return int(res), true // it was done after all
		}
		return 0, false
	}
}

// cancel cancels the request in flight and waits for its completion:
// its result (-ECANCELED when it was cancelled), or false when the ring
// failed (then r.broken: the request may be the kernel's still, so the
// ring and the memory are never reused).
func (r *uring) cancel() (int32, bool) {
	r.sqes[1] = uringSQE{opcode: uringOpCancel, fd: -1, addr: uringUserOp, userData: uringUserCancel}
	r.push(1)
	for {
		e := r.enter()
		if res, done := r.reap(uringUserOp); done {
			return res, true
		}
		if e != 0 && e != unix.EINTR {
			r.broken = true
			return 0, false
		}
	}
}

// What heldRW did.
const (
	rwDone = iota // the read or write was done (or failed: its errno)
	rwNo          // nothing: wait as without io_uring (waitHeld)
	rwLong        // nothing, after holdMax: wait as after a long waitHeld
)

// heldRW is a held read into p or write of p (op) in one system call
// (above): the count (0 at the end of a read) or an errno, and rwDone;
// rwNo when the caller must wait as it would without it (no io_uring
// here, or the descriptor said EAGAIN: someone made it non-blocking);
// rwLong when the wait outlasted holdMax (counted in s.long, as waitHeld
// does). Only with preemptSignals: the signal is what ends a wait that
// goes on.
func (s *Stream) heldRW(op uint8, p []byte) (int, unix.Errno, int) {
	if !preemptSignals {
		return 0, 0, rwNo
	}
	r := getUring()
	if r == nil {
		return 0, 0, rwNo
	}
	s.heldWaits++
	hook(hookStreamHeld)
	now := yieldBeforeHold()
	for {
		res, ok := r.rw(op, s.fd, p)
		if ok {
			putUring(r)
			if res == -int(unix.EAGAIN) {
				return 0, 0, rwNo
			}
			s.long = 0
			// Done within a few µs: it did not sleep (a wake-up takes longer).
			s.waited = monoNow()-now > int64(5*time.Microsecond)
			if res < 0 {
				return 0, unix.Errno(-res), rwDone
			}
			return res, 0, rwDone
		}
		if r.broken {
			return 0, 0, rwNo
		}
		if monoNow()-now >= int64(holdMax) {
			putUring(r)
			s.long++
			return 0, 0, rwLong
		}
		runtime.Gosched() // most likely sysmon's preemption: let it happen
	}
}
