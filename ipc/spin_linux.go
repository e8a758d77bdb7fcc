package ipc

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// spinner is an adaptive spin budget, one per object per process (queues,
// semaphores, mutexes). A FUTEX_WAIT plus the wakeup costs about 10 µs (far
// more on a busy VM), and a busy peer on another CPU often answers sooner,
// so a waiter first spins for a budget between spinMin and spinMax:
//
//   - a spin that succeeds sets the budget to twice the longest of it and
//     the budget it had (capped at spinMax), so a budget grows at once to
//     what the peer's turnaround needs;
//   - a spin that gives up halves the budget (down to spinMin), so a peer
//     that answers late (a long computation, a process that waits for
//     something else) stops costing spins;
//   - every spinReprobe-th wait spins for spinMax whatever the budget: the
//     budget can not get stuck low. Without it a ping-pong whose turnaround
//     once exceeded a halved budget never spun successfully again, and the
//     only way back was a futex sleep shorter than spinMax, which on a VM
//     almost never happens: round trips stuck at 14 or 55-74 µs from run
//     to run instead of ~2.5 µs. The re-probe costs at most spinMax per
//     spinReprobe waits (~1 µs a wait) when the peer is really slow.
//   - a short sleep does not raise the budget (it used to: a sleep shorter
//     than spinMax "would have been caught" by spinning that long). When
//     the two processes share a CPU (the scheduler's choice under load),
//     the peer answers soon only because this one slept: every sleep
//     raised the budget to twice its ~6 µs and the next wait spun that long
//     for nothing. A link round trip with both processes moved onto one
//     CPU took 26-36 µs with it and 15-16 without (12.6 pinned, where no
//     one spins); the re-probe alone brings a lost budget back.
//
// spinMax is about the cost of the sleep it saves (measured: 5 µs catches
// too little of a busy peer's turnaround, 50 µs wastes CPU for no gain).
//
// When this process may run on one CPU only, spinning cannot help: the peer
// that would end the wait cannot run while we spin. Measured pinned to one
// CPU, a queue round trip took 31 µs with spinning and a few µs without.
//
// Nor does a waiter spin while its object's sleeps go to the bell (long,
// see sleep): its last sleep outlasted holdMax, so the peer's answer is
// milliseconds away, and the budget (down to spinMin, and spinMax every
// spinReprobe-th wait) was spent for nothing on every wait: spinMin plus
// spinMax/spinReprobe, ~2.3 µs a wait, and 2.3 µs CPU a hop (the spin,
// its closure and its clock reads) on the 256-process token ring (perf
// record -a, laps 400 minus laps 100), and a
// process woken on this CPU waited for the spin to end. A peer that turns
// fast again makes the sleeps short, and shortRun short ones in a row
// clear long: spinning resumes, re-probe included.
type spinner struct {
	budget atomic.Int64  // ns; 0 = not yet set: spinMax
	waits  atomic.Uint32 // waits so far, for the re-probe
	long   atomic.Uint32 // 1: sleeps go to the bell (a held one outlasted holdMax; sleep)
	short  atomic.Uint32 // short sleeps on the bell in a row (sleep)
}

const (
	spinMin     = 1 * time.Microsecond
	spinMax     = 20 * time.Microsecond
	spinReprobe = 16
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
	if !spinning || sp.long.Load() != 0 {
		return try()
	}
	budget, limit := sp.plan()
	end := start.Add(limit)
	if !deadline.IsZero() && deadline.Before(end) {
		end = deadline
	}
	for i := 1; ; i++ {
		if try() {
			sp.won(budget, time.Since(start))
			return true
		}
		if i%32 == 0 && time.Now().After(end) {
			sp.lost(budget)
			return false
		}
	}
}

// plan counts a wait and returns the budget in force and how long this
// wait may spin: the budget, or spinMax on every spinReprobe-th wait.
func (sp *spinner) plan() (budget int64, limit time.Duration) {
	budget = sp.budget.Load()
	if budget == 0 {
		budget = int64(spinMax)
	}
	limit = time.Duration(budget)
	if sp.waits.Add(1)%spinReprobe == 0 {
		limit = spinMax
	}
	return budget, limit
}

// won records a spin, planned with budget, that succeeded after took: the
// budget becomes twice the longer of the two, up to spinMax.
func (sp *spinner) won(budget int64, took time.Duration) {
	if budget < int64(spinMax) {
		sp.budget.Store(min(2*max(budget, int64(took)), int64(spinMax)))
	}
}

// lost records a spin, planned with budget, that gave up: the budget
// halves, down to spinMin.
func (sp *spinner) lost(budget int64) { sp.budget.Store(max(budget/2, int64(spinMin))) }

// holdLong is how many sleeps in a row must outlast holdMax before a
// stream's waits stop holding the P (futex_linux.go, stream.go): one long
// sleep among short ones (a peer that paused) does not turn holding off.
const holdLong = 2

// A queue sleep that outlasts holdMax goes on on the bell (bell_linux.go),
// and so do the object's next ones, until shortRun of them in a row were
// shorter than shortSleep: then its sleeps hold the P again. One held
// sleep that runs out is enough to switch (2 when the sleep after the hold
// was an ordinary futex sleep, 4-6 context switches): a held sleep that
// runs out costs the most when this process's sysmon is awake (a GC woke
// it) and sees the P busy, polling every 20 µs for its first millisecond;
// a short sleep on the bell costs a pass of the scheduler.
const (
	shortSleep = time.Millisecond
	shortRun   = 4
)

// sleepClock times the sleeps that decide when an object's sleeps hold the
// P again: monoNow, but for a test, which must not depend on how long this
// machine takes to return from a sleep that does not wait.
var sleepClock = monoNow

// sleep sleeps while *addr == val, until woken or deadline (FutexWait).
// With SetHoldP it holds the P (futexWaitHeld) unless this object's latest
// sleeps were long; a sleep that outlasts the hold, and a sleep expected
// to be long, goes on on the bell (sleepLong). While the hold is paused
// every sleep is on the bell, which leaves the P to the goroutine the
// pause is for.
func (sp *spinner) sleep(addr *uint32, val uint32, deadline time.Time) error {
	if !holdP.Load() {
		return FutexWait(addr, val, deadline)
	}
	if holdPaused.Load() != 0 {
		return sleepLong(addr, val, deadline)
	}
	if sp.long.Load() == 0 {
		err := futexWaitHeld(addr, val, deadline)
		if err != errHoldOver {
			return err
		}
		sp.long.Store(1)
		sp.short.Store(0)
		return sleepLong(addr, val, deadline)
	}
	start := sleepClock()
	err := sleepLong(addr, val, deadline)
	if err == nil && sleepClock()-start < int64(shortSleep) {
		if sp.short.Add(1) >= shortRun {
			sp.long.Store(0)
			sp.short.Store(0)
		}
	} else {
		sp.short.Store(0)
	}
	return err
}

// sleepLong is a sleep expected to be long: on the bell when this process
// has one free, else on the futex.
func sleepLong(addr *uint32, val uint32, deadline time.Time) error {
	if err := sleepBell(addr, val, deadline); err != errNoBell {
		return err
	}
	return FutexWait(addr, val, deadline)
}
