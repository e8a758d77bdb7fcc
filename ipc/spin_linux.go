package ipc

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// spinner is an adaptive spin budget shared by every waiter in this
// package (queues, semaphores, mutexes). A FUTEX_WAIT plus the wakeup cost
// about 10 µs, and a busy peer on another CPU often answers sooner, so a
// waiter first spins: for a budget, between spinMin and spinMax, that
// doubles after a spin that succeeded, halves after one that gave up, and
// becomes twice the wait after a sleep short enough that spinning would
// have caught it (without that rule a ping-pong whose turnaround exceeds
// the budget never spins successfully again).
//
// spinMax is about the cost of the sleep it saves (measured: 5 µs catches
// too little of a busy peer's turnaround, 50 µs wastes CPU for no gain).
//
// When this process may run on one CPU only, spinning cannot help: the peer
// that would end the wait cannot run while we spin. Measured pinned to one
// CPU, a queue round trip took 31 µs with spinning (the budget grows to
// spinMax on every hop, since the wait it measures includes the spin) and
// a few µs without.
type spinner struct{ budget atomic.Int64 }

const (
	spinMin = 1 * time.Microsecond
	spinMax = 20 * time.Microsecond
)

// spinning is false when the CPU affinity mask allows a single CPU.
var spinning = func() bool {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return true
	}
	return set.Count() > 1
}()

// spin calls try until it succeeds (true) or the budget or the deadline
// runs out (false).
func (sp *spinner) spin(try func() bool, start, deadline time.Time) bool {
	if !spinning {
		return try()
	}
	budget := sp.budget.Load()
	end := start.Add(time.Duration(budget))
	if !deadline.IsZero() && deadline.Before(end) {
		end = deadline
	}
	for i := 1; ; i++ {
		if try() {
			if budget < int64(spinMax) {
				sp.budget.Store(min(2*budget, int64(spinMax)))
			}
			return true
		}
		if i%32 == 0 && time.Now().After(end) {
			if budget > int64(spinMin) {
				sp.budget.Store(max(budget/2, int64(spinMin)))
			}
			return false
		}
	}
}

// slept records a wait, begun at start, that ended after sleeping.
func (sp *spinner) slept(start time.Time) {
	if d := time.Since(start); d < spinMax {
		sp.budget.Store(int64(max(2*d, spinMin)))
	}
}
