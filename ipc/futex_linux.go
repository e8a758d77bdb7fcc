package ipc

import (
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

// FutexWake wakes up to n processes sleeping on addr.
func FutexWake(addr *uint32, n int) {
	unix.Syscall(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(n))
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
