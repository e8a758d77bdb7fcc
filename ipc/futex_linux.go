package ipc

import (
	"errors"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futexes on MAP_SHARED memory are how processes sleep on shared-memory
// objects and wake each other. They are shared futexes (no
// FUTEX_PRIVATE_FLAG) because the waiters live in different processes.

const (
	futexWait       = 0
	futexWake       = 1
	futexWaitBitset = 9
	futexBitsetAll  = 0xffffffff
	sysFutexWaitv   = 449 // futex_waitv(2), Linux 5.16+
	futex2Size32    = 0x02
)

// FutexWait sleeps while *addr == val, until woken, until deadline (zero =
// forever) or until a signal. It returns nil when woken or when *addr had
// already changed, ErrTimeout at the deadline. Callers re-check their
// condition in a loop: wakeups may be spurious.
func FutexWait(addr *uint32, val uint32, deadline time.Time) error {
	var tsp unsafe.Pointer
	var ts unix.Timespec
	if !deadline.IsZero() {
		// FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time.
		d := time.Until(deadline)
		if d <= 0 {
			return ErrTimeout
		}
		var now unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
		ts = unix.NsecToTimespec(now.Nano() + int64(d))
		tsp = unsafe.Pointer(&ts)
	}
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitBitset,
		uintptr(val), uintptr(tsp), 0, futexBitsetAll)
	switch e {
	case 0, unix.EAGAIN, unix.EINTR:
		return nil
	case unix.ETIMEDOUT:
		return ErrTimeout
	default:
		return syscall.Errno(e)
	}
}

// FutexWake wakes up to n processes sleeping on addr. A raw system call
// (it never blocks): through entersyscall it would wake this process's
// sysmon from its deep sleep (see "Holding the P" below).
func FutexWake(addr *uint32, n int) {
	unix.RawSyscall(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(n))
}

// futexWaitv is the kernel's struct futex_waitv.
type futexWaitv struct {
	val      uint64
	uaddr    uint64
	flags    uint32
	reserved uint32
}

// FutexWaitAny sleeps until any addrs[i] != vals[i], a wake on any of them,
// the deadline (zero = forever) or a signal. It lets select wait on several
// shared-memory objects at once. At most 128 addresses.
func FutexWaitAny(addrs []*uint32, vals []uint32, deadline time.Time) error {
	if len(addrs) == 1 {
		return FutexWait(addrs[0], vals[0], deadline)
	}
	w := make([]futexWaitv, len(addrs))
	for i, a := range addrs {
		w[i] = futexWaitv{val: uint64(vals[i]), uaddr: uint64(uintptr(unsafe.Pointer(a))), flags: futex2Size32}
	}
	var tsp unsafe.Pointer
	var ts unix.Timespec
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return ErrTimeout
		}
		var now unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
		ts = unix.NsecToTimespec(now.Nano() + int64(d))
		tsp = unsafe.Pointer(&ts)
	}
	_, _, e := unix.Syscall6(sysFutexWaitv, uintptr(unsafe.Pointer(&w[0])), uintptr(len(w)), 0,
		uintptr(tsp), uintptr(unix.CLOCK_MONOTONIC), 0)
	switch e {
	case 0, unix.EAGAIN, unix.EINTR:
		return nil
	case unix.ETIMEDOUT:
		return ErrTimeout
	default:
		return syscall.Errno(e)
	}
}

// load32 / store32 keep the atomic call sites short in the shm code.
func load32(p *uint32) uint32     { return atomic.LoadUint32(p) }
func store32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }

// Holding the P. A goroutine that sleeps in a system call lends its P (the
// Go scheduler's right to run Go code) to the runtime: sysmon, the
// runtime's monitor thread, takes it back from a call that lasts more than
// one of its ticks (20 µs while the process is busy) when no other P is
// idle, which with GOMAXPROCS=1 (a child, launch.go) is always: it hands
// the P to another thread, which finds nothing to run and sleeps again;
// the sleeper, woken, takes the idle P back and wakes sysmon, which polls
// every 20 µs again. Measured on a 32-process token ring (perf stat
// context-switches; perf record -e context-switches for where): 5.5
// context switches per hop, of them 1.1 the sleep itself, 1.8 sysmon's
// polls, 1.0 its deep sleep, 1.0 the borrowing thread; a C ring takes 1.3.
// GOMAXPROCS=2 (an idle P: no retake for 10 ms) made it 3.2, and 72 on a
// 256-process ring whose laps outlast 10 ms: sysmon then polls every 20 µs
// for the whole lap.
//
// So a process that runs one goroutine that matters (a child: the Lua
// state) sleeps on its queues in a raw system call: the runtime sees a
// goroutine that runs, takes nothing back and starts nobody; sysmon's
// period grows to 10 ms. The sleep costs one context switch: 1.5-1.6 per
// hop on the same ring, 14-15 µs CPU per hop against 34-41. The price:
// while it sleeps no other goroutine of the process runs (one P), so such
// a sleep runs what is runnable first (runtime.Gosched, at most once a
// millisecond), lasts at most holdMax, and is used only while this
// object's sleeps are short (spinner.sleep): a queue sleep that outlasts
// holdMax goes on on the bell (below), as do the next ones until a few in
// a row are short; a stream's holdLong waits in a row that outlast holdMax
// go back to the ordinary call, whose P hand-off then happens once per
// long wait, not per message. Sysmon's preemption (a
// signal after 10 ms on one scheduling tick) ends a held sleep with EINTR;
// the sleep yields (the preemption is taken, other goroutines run) and
// goes on.
//
// Held or not, though, a blocked process keeps a sysmon that wakes at
// least every 10 ms (34% of the CPU of a 256-process ring), and under load
// a lap outlasts holdMax and the ring fell back to ordinary sleeps (4-6
// context switches a hop). A hop like C's (one thread woken) needs a wait
// the runtime parks without a thread: a descriptor read through the
// netpoller. Context switches per hop on a standalone 256-process Go ring
// (GOMAXPROCS=1): C pipes 1.68, the netpoller pipe 1.84, futex through
// syscall.Syscall 5.08, entersyscallblock 7.2 (it starts a spinning thread
// and wakes sysmon on return), a futex held for ever 51. So a queue sleep
// that outlasts the held one goes on on the bell (bell_linux.go): the
// kernel waits on the futex for the process (io_uring) and signals an
// eventfd the netpoller watches.
//
// Tried on 2026-12-02 and not landed: a per-process doorbell, a pipe read
// through the netpoller, rung by wakers through /proc/PID/fd from a board
// of sleepers in the queue's memory. On the Lua ring
// 4.8-6.6 context switches a hop fell to 1.2-1.3, but it lost a wake
// about once in ten runs of three parallel 128-process rings at load 40,
// and a child is not dumpable (PR_SET_DUMPABLE 0), so a non-root waker
// cannot open its /proc/PID/fd at all. The bell keeps the kernel's futex
// as the only record of who sleeps.

// holdP is set by SetHoldP; holdPaused counts PauseHold calls not yet
// resumed.
var (
	holdP      atomic.Bool
	holdPaused atomic.Int32
)

// SetHoldP makes sleeps on queues hold the P while they are short (see
// above). Only for a process whose Go code that matters runs on one
// goroutine with GOMAXPROCS=1: other goroutines wait up to holdMax while
// it sleeps (a goroutine that feeds a queue the process may sleep on
// calls PauseHold first).
func SetHoldP(on bool) { holdP.Store(on) }

// PauseHold makes sleeps stop holding the P until resume is called: call
// it before starting a goroutine that will send to a queue this process
// may sleep on (ipc.monitor's DOWN), since that goroutine needs the P to
// run. Held, its message came 10-17 ms late (the hold ran out first),
// against 1-6 ms.
func PauseHold() (resume func()) {
	holdPaused.Add(1)
	return func() { holdPaused.Add(-1) }
}

// holdMax bounds a sleep that holds the P. A 256-process ring's lap takes
// 10-15 ms (45-60 µs a hop): with 10 ms it falls back to ordinary sleeps
// (4-6 context switches a hop), with 50 ms it held throughout (1.1-3.3).
// A/B of the two (go run ./tests/bench --ab, token-ring, in turns): 50 ms
// faster at load 3.6-13.7 (11 of 16 repeats, median hop 45.4 against
// 57.6 µs), slower at load 9-20 (base ÷ it 1.27 over 5 repeats; 4 of 5
// against 10 ms, 84-157 against 58-100 µs a hop): a process that holds
// its P through a long lap keeps sysmon polling every 10 ms and takes a
// preemption signal per 10 ms. 10 ms, the one that degrades less. (A
// variable for tests, whose children shorten it to reach the bell often.)
var holdMax = 10 * time.Millisecond

// lastYield is when a held sleep last let other goroutines run
// (monoNow ns).
var lastYield atomic.Int64

// holding says whether a sleep may hold the P now, for an object whose
// latest long sleeps in a row number long (spinner.sleep, Stream.holding).
func holding(long int) bool {
	return holdP.Load() && holdPaused.Load() == 0 && long < holdLong
}

// yieldBeforeHold lets what became runnable meanwhile run first, at most
// once a millisecond, before a wait that holds the P; the scheduling tick
// moves on too (sysmon preempts a tick older than 10 ms). It returns
// monoNow.
func yieldBeforeHold() int64 {
	now := monoNow()
	if now-lastYield.Load() >= int64(time.Millisecond) {
		lastYield.Store(now)
		runtime.Gosched()
	}
	return now
}

// futexWaitHeld sleeps like FutexWait, holding the P, until woken, until
// deadline or for at most holdMax. It returns nil when woken (or *addr had
// changed), ErrTimeout at deadline, errHoldOver when holdMax passed first.
func futexWaitHeld(addr *uint32, val uint32, deadline time.Time) error {
	now := yieldBeforeHold()
	end, fail := now+int64(holdMax), errHoldOver
	if !deadline.IsZero() {
		if d := now + int64(time.Until(deadline)); d < end {
			end, fail = d, ErrTimeout
		}
	}
	ts := unix.NsecToTimespec(end)
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitBitset,
			uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, futexBitsetAll)
		switch e {
		case 0, unix.EAGAIN:
			return nil
		case unix.ETIMEDOUT:
			return fail
		case unix.EINTR:
			// A signal, most likely sysmon's preemption: let it happen.
			runtime.Gosched()
			if load32(addr) != val {
				return nil
			}
		default:
			return syscall.Errno(e)
		}
	}
}

// errHoldOver: a held sleep reached holdMax.
var errHoldOver = errors.New("held sleep over")
