package ipc

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The bell: long sleeps on a futex word that cost no thread and no sysmon.
//
// A child (GOMAXPROCS=1, holding the P: futex_linux.go) whose queue sleeps
// outlast the held futex sleep asks the kernel to wait on the futex for it:
// an IORING_OP_FUTEX_WAIT on its own io_uring, whose completion signals an
// eventfd that Go's netpoller watches. The goroutine then parks in the
// netpoller: the process's only thread blocks in epoll_wait with the P
// idle, and sysmon, which sees every P idle, goes into its deep sleep and
// stays there (the io_uring_enter and the eventfd read are raw system
// calls, as is FutexWake, and only a system call through entersyscall
// wakes it). A waker does nothing new: its FUTEX_WAKE finds the io_uring
// waiter on the futex's queue as it finds a thread in FUTEX_WAIT, and the
// kernel completes the request, which signals the eventfd.
//
// Why no wake is lost. The kernel checks the word and enqueues the waiter
// atomically, under the futex hash bucket's lock, exactly as for
// FUTEX_WAIT: either the waiter is queued before the waker's bump (the
// waker's FUTEX_WAKE, issued after the bump, finds it) or the check sees
// the bumped word and the request completes at once with EAGAIN. So the
// sleeper counts (recvSleepers, roomSleepers: the sleeper stays counted
// while it is on the bell) and the skipped redundant wakes
// (queue_wait_linux.go: a FUTEX_WAKE issued after the word reached v woke
// every sleeper that slept on a value before v) hold unchanged: nothing
// outside the kernel's futex queue says who sleeps. On the sleeper's side
// one thing must hold: it parks only while its request has not completed.
// It looks for the CQE inside the netpoller's read (rc.Read's callback),
// which first clears any readiness the netpoller had recorded and then
// calls the callback; the goroutine parks only when that look found no
// CQE. The kernel posts a CQE (the completion queue's tail) before it
// signals the eventfd, and the netpoller watches the eventfd
// edge-triggered, where every signal is an edge (eventfd wakes its wait
// queue on each one, whatever its count): so a completion the look did
// not see signals the eventfd after the readiness was cleared, and that
// edge either wakes the parked goroutine or leaves the descriptor marked
// ready, and the park returns at once. An edge left by an earlier request
// (a cancelled wait's completion, a completion found without parking)
// only makes the goroutine look once more. The eventfd is never read: its
// count is nobody's record (edges are), and a read per sleep and per wake
// was two of the seven system calls of a hop on the 256-process ring.
//
// A sleep that ends by its deadline (or the periodic check of a room wait)
// cancels its request (IORING_OP_ASYNC_CANCEL) and waits for the request's
// own completion before it returns, so no request outlives its sleep: a
// FUTEX_WAKE of one sleeper (room) can never be taken by a waiter nobody
// waits for. A request that completed with 0 was woken: the sleep returns
// nil, as FUTEX_WAIT does when the wake beats its timeout.
//
// An earlier bell (tried on 2026-12-02, not landed) had wakers write a
// byte into each sleeper's pipe, opened through /proc/PID/fd from a board
// of sleepers in the queue's memory; this one needs no board, no
// /proc (a child is not dumpable: a non-root waker cannot open its
// descriptors) and no pid checks. Where io_uring is missing or refused
// (io_uring_disabled, --sandbox's seccomp filter, a kernel before 6.7
// without IORING_OP_FUTEX_WAIT), sleeps stay ordinary futex sleeps.

// The rest of the io_uring ABI used here (uring_linux.go has the
// structures and the constants both use).
const (
	uringRegEventfd    = 4  // IORING_REGISTER_EVENTFD
	uringOpFutexWait   = 51 // IORING_OP_FUTEX_WAIT, Linux 6.7+
	futexBitsetMatches = 0xffffffff
	bellEntries        = 4
)

// futexSQE is struct io_uring_sqe with the fields a futex wait sets.
type futexSQE struct {
	opcode   uint8
	_        uint8
	_        uint16
	fd       int32  // futex2 flags
	off      uint64 // addr2: the futex value
	addr     uint64
	_        uint32
	_        uint32 // futex_flags: 0
	userData uint64
	_        [2]uint32
	addr3    uint64 // the futex mask
	_        uint64
}

var (
	_ [64 - unsafe.Sizeof(futexSQE{})]byte
	_ [unsafe.Sizeof(futexSQE{}) - 64]byte
)

// bell is this process's io_uring and the eventfd its completions signal.
// One goroutine uses it at a time (busy); others sleep on the futex.
type bell struct {
	*uringMem
	evFd              int
	ev                *os.File // evFd, non-blocking, in the netpoller
	rc                syscall.RawConn
	busy              atomic.Bool
	dead              atomic.Bool        // the kernel refused a submission: sleep on the futex
	seq               uint64             // user_data of the latest request
	want              uint64             // the request look looks for
	res               int32              // its result, once got
	got               bool               // look found it
	look              func(uintptr) bool // b.lookDone, made once: no closure per park
	ddl               time.Time          // the read deadline last set
	sleeps, cancelled atomic.Uint64      // counts, for tests
}

var (
	bellOnce sync.Once
	bellSelf *bell // nil when io_uring cannot wait on futexes here
)

// ownBell returns this process's bell, made on first use, or nil.
func ownBell() *bell {
	bellOnce.Do(func() { bellSelf = newBell() })
	return bellSelf
}

func newBell() *bell {
	m, err := newUringMem(bellEntries)
	if err != nil {
		return nil
	}
	b := &bell{uringMem: m, evFd: -1}
	b.look = b.lookDone
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil
	}
	b.evFd = efd
	if _, _, e := unix.RawSyscall6(unix.SYS_IO_URING_REGISTER, uintptr(b.fd), uringRegEventfd,
		uintptr(unsafe.Pointer(&efd)), 1, 0, 0); e != 0 {
		return nil
	}
	// The probe: a wait on a word that does not hold the value completes
	// at once with EAGAIN where IORING_OP_FUTEX_WAIT exists (EINVAL where
	// the opcode is unknown).
	var w uint32 = 1
	if !b.submit(uringOpFutexWait, uintptr(unsafe.Pointer(&w)), 0) {
		return nil
	}
	if res, got := b.reapWait(b.seq); !got || res != -int32(unix.EAGAIN) {
		return nil
	}
	b.ev = os.NewFile(uintptr(efd), "bell") // non-blocking: the netpoller
	if b.rc, err = b.ev.SyscallConn(); err != nil {
		return nil
	}
	ok = true
	return b
}

// close undoes a newBell that failed half-way.
func (b *bell) close() {
	if b.ev != nil {
		b.ev.Close()
	} else if b.evFd >= 0 {
		unix.Close(b.evFd)
	}
	b.uringMem.close()
}

// submit queues one request and enters it: a futex wait (op
// uringOpFutexWait, addr the word, val the value) or the cancel of
// request val (uringOpCancel). It returns false when the kernel
// refused the submission.
func (b *bell) submit(op uint8, addr uintptr, val uint64) bool {
	b.seq++
	i := atomic.LoadUint32(b.sqTail) & b.sqMask
	sqe := (*futexSQE)(b.sqe(i))
	*sqe = futexSQE{opcode: op, userData: b.seq}
	switch op {
	case uringOpFutexWait:
		sqe.fd = futex2Size32 // shared: no FUTEX2_PRIVATE
		sqe.addr, sqe.off, sqe.addr3 = uint64(addr), val, futexBitsetMatches
	case uringOpCancel:
		sqe.addr = val
	}
	b.push(i)
	n, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(b.fd), 1, 0, 0, 0, 0)
	return e == 0 && n == 1
}

// reapWait waits (in the kernel, briefly: a completion is on its way) for
// request want's completion.
func (b *bell) reapWait(want uint64) (int32, bool) {
	for range 1000 {
		if res, got := b.reap(want); got {
			return res, true
		}
		_, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(b.fd), 0, 1, uringEnterGetEvents, 0, 0)
		if e != 0 && e != unix.EINTR && e != unix.EAGAIN {
			return 0, false
		}
	}
	return 0, false
}

// lookDone is the netpoller read's callback: it reaps the completions
// posted so far and says whether request want's is among them (res).
func (b *bell) lookDone(uintptr) bool {
	if !b.got {
		if res, got := b.reap(b.want); got {
			b.res, b.got = res, true
		}
	}
	return b.got
}

// park waits in the netpoller until request want has completed (true) or
// until (false, or when the wait failed otherwise).
func (b *bell) park(until time.Time) bool {
	if !until.Equal(b.ddl) {
		if err := b.ev.SetReadDeadline(until); err != nil {
			return false
		}
		b.ddl = until
	}
	return b.rc.Read(b.look) == nil && b.got
}

// errNoBell: the bell cannot be used now (sleep on the futex instead).
var errNoBell = errors.New("no bell")

// sleepBell sleeps like FutexWait(addr, val, deadline) with the goroutine
// parked in the netpoller, not in a system call. It returns errNoBell,
// having done nothing, when the bell is unavailable here or in use by
// another goroutine.
func sleepBell(addr *uint32, val uint32, deadline time.Time) error {
	b := ownBell()
	if b == nil || !b.busy.CompareAndSwap(false, true) {
		return errNoBell
	}
	defer b.busy.Store(false)
	if b.dead.Load() {
		return errNoBell
	}
	if !b.submit(uringOpFutexWait, uintptr(unsafe.Pointer(addr)), uint64(val)) {
		b.dead.Store(true) // the request may sit in the submission queue
		return errNoBell
	}
	req := b.seq
	b.want, b.got = req, false
	b.sleeps.Add(1)
	if b.park(deadline) {
		return futexResult(b.res)
	}
	// The deadline (or a failed wait): cancel, then wait for the
	// request's own completion, unless the look found it meanwhile.
	res, got := b.res, b.got
	if !got {
		if got = b.submit(uringOpCancel, 0, req); got {
			b.cancelled.Add(1)
			res, got = b.reapWait(req)
		}
	}
	if !got {
		// Never seen: the kernel refused the cancel or did not
		// complete the request. It may stay queued on the futex;
		// the bell is not used again.
		b.dead.Store(true)
		return ErrTimeout
	}
	if res == 0 || time.Now().Before(deadline) || deadline.IsZero() {
		return nil // woken before the cancel took (or a failed wait: a spurious wake)
	}
	return ErrTimeout
}

// futexResult maps a completed futex wait's result as FutexWait does.
func futexResult(res int32) error {
	switch e := syscall.Errno(-res); {
	case res >= 0, e == unix.EAGAIN, e == unix.EINTR:
		return nil
	case e == unix.ETIMEDOUT, e == unix.ECANCELED:
		return ErrTimeout
	default:
		return e
	}
}
