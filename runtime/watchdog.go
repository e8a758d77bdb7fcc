package runtime

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// errRunTimeout is the cause the watchdog cancels a run's context with
// when --timeout or ipc.run{timeout} expires.
var errRunTimeout = errors.New("the run's timeout expired")

// hardMargin is how long after the timeout and the grace period a run may
// still take to stop before the watchdog abandons it.
const hardMargin = 2 * time.Second

// watchdog bounds a whole run, top-level code included, from outside the
// Lua VM. When the deadline comes while the supervisor waits for the
// processes (inside ipc.run), it tells the supervisor (expired), which
// stops them, and gives the top level the grace period to read the report
// before the same happens to it. When the deadline comes in top-level
// code, it cancels the run's context: the parent's Lua VM stops at its
// next instruction (so `while true do end` at the top level ends) and
// ipc.sleep returns. If
// the run has still not ended grace + hardMargin later (the parent's Lua
// is blocked in a call that does not watch the context), hard is closed
// and RunString abandons the run: it kills every process group the run
// started and removes its run directory itself.
type watchdog struct {
	mu       sync.Mutex
	cancel   context.CancelCauseFunc
	grace    time.Duration
	deadline time.Time
	timer    *time.Timer
	fired    bool
	inRun    bool          // the supervisor is waiting for the processes
	expired  chan struct{} // the deadline came during ipc.run
	hard     chan struct{}
	groups   []int // process groups of the run's children
	stopped  bool
}

func newWatchdog(cancel context.CancelCauseFunc, grace time.Duration) *watchdog {
	return &watchdog{cancel: cancel, grace: grace, hard: make(chan struct{}), expired: make(chan struct{}, 1)}
}

// arm makes the run end at most d from now (d > 0); an earlier deadline
// stands.
func (w *watchdog) arm(d time.Duration) {
	if d <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	at := time.Now().Add(d)
	if w.fired || w.stopped || (!w.deadline.IsZero() && !at.Before(w.deadline)) {
		return
	}
	w.deadline = at
	if w.timer != nil {
		w.timer.Stop()
	}
	w.timer = time.AfterFunc(d, w.fire)
}

func (w *watchdog) fire() {
	w.mu.Lock()
	if w.stopped || w.fired {
		w.mu.Unlock()
		return
	}
	if w.inRun {
		// The supervisor stops the processes; the top level then has the
		// grace period (it reads the report, prints) before it is stopped.
		w.inRun = false
		w.expired <- struct{}{}
		w.deadline = time.Now().Add(w.grace)
		w.timer = time.AfterFunc(w.grace, w.fire)
		w.mu.Unlock()
		return
	}
	w.fired = true
	w.timer = time.AfterFunc(w.grace+hardMargin, func() { close(w.hard) })
	w.mu.Unlock()
	w.cancel(errRunTimeout)
}

// enterRun and leaveRun bracket the supervisor's wait for the processes.
func (w *watchdog) enterRun() {
	w.mu.Lock()
	w.inRun = true
	w.mu.Unlock()
}

func (w *watchdog) leaveRun() {
	w.mu.Lock()
	w.inRun = false
	w.mu.Unlock()
}

// stop disarms the watchdog (the run is over).
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

// addGroup records a child's process group, for abandon.
func (w *watchdog) addGroup(pgid int) {
	w.mu.Lock()
	w.groups = append(w.groups, pgid)
	w.mu.Unlock()
}

// killGroups SIGKILLs every process group the run started.
func (w *watchdog) killGroups() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, g := range w.groups {
		unix.Kill(-g, unix.SIGKILL)
	}
}

// timedOut reports whether ctx ended because the run's timeout expired.
func timedOut(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), errRunTimeout)
}

// abandon cleans up after a run whose Lua goroutine the watchdog gave up
// on: the children are already killed (killGroups); the run directory and
// the message queues it records go now, since the goroutine that would
// have removed them may never return.
func (sup *supervisor) abandon() {
	if err := sup.s.env.RemoveRunDir(); err != nil {
		sup.errorf("removing the run directory: %v", err)
	}
}
