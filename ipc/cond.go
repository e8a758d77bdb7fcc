package ipc

import (
	"math"
	"os"
)

// Cond is a condition variable shared by the processes of a run, used with
// a Mutex (as pthread_cond with PTHREAD_PROCESS_SHARED). Sleepers wait in a
// FIFO waitlist (waitlist_linux.go) in a Region; Signal wakes the oldest,
// Broadcast all of them.
//
// Layout of the memfd:
//
//	0   magic
//	64  waitlist
//
// Mesa semantics: a woken waiter does not run at once; it must take the
// mutex again, and by then another process may have changed the state the
// signal announced. So the condition is re-checked in a loop:
//
//	m.Lock(...)
//	for !condition() { c.Wait(m, ...) }
//	... m.Unlock()
//
// Wait joins the waitlist before it unlocks the mutex, so a Signal made
// after the unlock (by a process that took the mutex, changed the state and
// signalled) is never lost. A Signal or Broadcast with nobody waiting does
// nothing.
//
// Crash safety. A waiter killed while it sleeps leaves a slot that the
// supervisor's Recover frees; a signal already given to it is passed to the
// next waiter, so the dead do not swallow signals. A mutex holder killed
// while others wait is handled by the Mutex: the waiter that takes it next
// is told the owner died (Wait returns ownerDied).
type Cond struct {
	obj regionObject
	wl  waitlist
}

const (
	condMagic = 0x444e4349 // "ICND"
	condSize  = 64 + waitlistSize
)

// NewCond creates a condition variable. name is the script's name for it.
func NewCond(name string) (*Cond, error) {
	r, err := NewRegion("cond:"+name, condSize)
	if err != nil {
		o := regionObject{kind: "cond", name: name}
		return nil, o.errorf("create", "%v", err)
	}
	store32(r.U32(0), condMagic)
	return newCond(name, r), nil
}

// OpenCond maps a condition variable created by NewCond from its inherited
// memfd. The Cond owns f from then on.
func OpenCond(f *os.File, name string) (*Cond, error) {
	r, err := openRegionChecked(f, "cond", name, condMagic, condSize)
	if err != nil {
		return nil, err
	}
	return newCond(name, r), nil
}

func newCond(name string, r *Region) *Cond {
	c := &Cond{wl: newWaitlist(r, 64, uint32(os.Getpid()))}
	c.obj.init("cond", name, r)
	return c
}

// SetStatus makes the condition variable record its waits in ws under the
// given object id (nil: don't record).
func (c *Cond) SetStatus(ws *WaitStatus, object int32) { c.obj.setStatus(ws, object) }

// Name is the script's name for the condition variable.
func (c *Cond) Name() string { return c.obj.name }

// File is the memfd to hand to a child through ExtraFiles.
func (c *Cond) File() *os.File { return c.obj.region.File }

// Waiting is the number of waiters not yet signalled (a snapshot).
func (c *Cond) Waiting() int {
	if c.obj.enter("waiting") != nil {
		return 0
	}
	defer c.obj.exit()
	return int(c.wl.queued())
}

// Wait unlocks m, which this process must hold, sleeps until signalled,
// and locks m again before it returns, whatever the outcome (as
// pthread_cond_wait). err is ErrTimeout when o.Timeout passed first (m is
// held again then too); ownerDied is m's report that its previous holder
// died holding it. Wakeups may be spurious in the sense of Mesa semantics:
// re-check the condition.
func (c *Cond) Wait(m *Mutex, o WaitOpts) (ownerDied bool, err error) {
	if err := c.obj.enter("wait"); err != nil {
		return false, err
	}
	defer c.obj.exit()
	deadline := o.Deadline()
	switch h := m.Holder(); {
	case h == 0:
		return false, c.obj.errorf("wait", "the mutex %q must be held by this process (it is not held)", m.Name())
	case h != int(m.pid):
		return false, c.obj.errorf("wait", "the mutex %q must be held by this process (held by pid %d)", m.Name(), h)
	}
	i, err := c.wl.joinWait(deadline, nil)
	if err != nil {
		return false, err
	}
	if err := m.Unlock(); err != nil {
		c.wl.lock()
		c.wl.leave(i)
		c.wl.unlock()
		return false, c.obj.errorf("wait", "%v", err)
	}
	c.obj.ws.Enter(OpCondWait, c.obj.id, -1, !deadline.IsZero())
	_, werr := c.wl.sleep(i, deadline, c.obj.isClosed, 0, nil)
	c.obj.ws.Leave()
	if werr != nil {
		c.wl.lock()
		if c.wl.leave(i) != slotWaiting {
			werr = nil // signalled as the deadline passed: a wakeup after all
		}
		c.wl.unlock()
	} else {
		c.wl.slots[i].state.Store(slotFree)
	}
	// Take the mutex back, without a deadline: the caller's code after
	// Wait runs holding it, whatever happened.
	ownerDied, lerr := m.Lock(WaitOpts{})
	if lerr != nil {
		return ownerDied, c.obj.errorf("wait", "locking the mutex again: %v", lerr)
	}
	switch werr {
	case nil:
		c.obj.ws.Done()
		return ownerDied, nil
	case ErrTimeout:
		return ownerDied, ErrTimeout
	case ErrClosed:
		return ownerDied, c.obj.errorf("wait", "cond was closed while waiting")
	}
	return ownerDied, c.obj.errorf("wait", "futex: %v", werr)
}

// Signal wakes the oldest waiter, if any.
func (c *Cond) Signal() error { return c.wake(1, "signal") }

// Broadcast wakes every waiter.
func (c *Cond) Broadcast() error { return c.wake(math.MaxInt32, "broadcast") }

func (c *Cond) wake(n int, op string) error {
	if err := c.obj.enter(op); err != nil {
		return err
	}
	defer c.obj.exit()
	if c.wl.queued() == 0 {
		c.obj.ws.Done()
		return nil
	}
	c.wl.lock()
	c.grant(n)
	c.wl.unlock()
	c.obj.ws.Done()
	return nil
}

// grant wakes up to n of the oldest waiters (locked).
func (c *Cond) grant(n int) {
	for ; n > 0 && c.wl.queued() > 0; n-- {
		i := c.wl.oldest()
		if i < 0 {
			return
		}
		c.wl.grant(i, slotGranted)
	}
}

// Recover forgets the waiters of process pid, which died; a signal given
// to one of them and not yet taken goes to the next waiter. The supervisor
// calls it for every child it reaps.
func (c *Cond) Recover(pid int) {
	if pid <= 0 || pid > math.MaxInt32 || c.obj.enter("recover") != nil {
		return
	}
	defer c.obj.exit()
	if !ownerDead(uint32(pid)) {
		return
	}
	c.wl.lockFor(uint32(pid))
	c.grant(c.wl.dropPid(uint32(pid)))
	c.wl.unlock()
}

// Close unmaps the condition variable in this process. Goroutines of this
// process waiting in it are released with an error (holding the mutex).
func (c *Cond) Close() error { return c.obj.close(c.wl.wakeAll) }

// Granted reports whether process pid was woken by a grant it has not yet
// acted on (it is about to run, though its status still says it waits).
// The deadlock watch asks, so that a process woken on a busy machine and
// not yet scheduled is not taken for a deadlocked one.
func (c *Cond) Granted(pid int) bool {
	if pid <= 0 || c.obj.enter("granted") != nil {
		return false
	}
	defer c.obj.exit()
	return c.wl.granted(uint32(pid))
}
