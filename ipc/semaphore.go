package ipc

import (
	"math"
	"os"
	"sync/atomic"
	"time"
)

// Semaphore is a counting semaphore shared by the processes of a run: a
// word holding the value and a FIFO waitlist (waitlist_linux.go), in a
// Region.
//
// Layout of the memfd:
//
//	0   magic
//	8   value    the count of free units (low 32 bits); the high 32 bits
//	             hold slot + 1 while a unit is on its way to a sleeper
//	64  waitlist the sleepers, oldest first
//
// Fairness: waiters are served in the order they began to wait. Post hands
// units to the oldest sleepers directly (the value is not raised while
// anyone sleeps), and a Wait that finds sleepers queued joins the end of the
// queue instead of taking a unit, so a process that arrives later never
// overtakes one that is already asleep. Only a Wait that finds nobody queued
// takes a free unit at once, with one compare-and-swap and no system call.
//
// No lost wakeups: a waiter joins the list (raising queued) and then, under
// the list's lock, moves free units to the oldest sleepers (settle); Post
// raises value and then, if queued is not 0, does the same. Either Post sees
// the waiter or the waiter's settle sees the new value.
//
// No lost units: settle takes a unit for slot i and records i in the same
// word, with one compare-and-swap, then grants, then clears the record. A
// process killed between the two leaves the record, and the repair of the
// waitlist grants that unit (finishHandoff).
type Semaphore struct {
	obj   regionObject
	value *uint64
	wl    waitlist
	spin  spinner
}

const (
	semMagic = 0x4d455349 // "ISEM"
	semSize  = 64 + waitlistSize
	// SemMax is the largest value a semaphore holds (as POSIX SEM_VALUE_MAX).
	SemMax = math.MaxInt32
)

// NewSemaphore creates a semaphore with the given initial value. name is
// the script's name for it, used in errors.
func NewSemaphore(name string, initial int) (*Semaphore, error) {
	o := regionObject{kind: "semaphore", name: name}
	if initial < 0 || initial > SemMax {
		return nil, o.errorf("create", "initial value %d must be between 0 and %d", initial, SemMax)
	}
	r, err := NewRegion("semaphore:"+name, semSize)
	if err != nil {
		return nil, o.errorf("create", "%v", err)
	}
	atomic.StoreUint64(r.U64(8), uint64(initial))
	store32(r.U32(0), semMagic)
	return newSemaphore(name, r), nil
}

// OpenSemaphore maps a semaphore created by NewSemaphore from its inherited
// memfd. The Semaphore owns f from then on.
func OpenSemaphore(f *os.File, name string) (*Semaphore, error) {
	r, err := openRegionChecked(f, "semaphore", name, semMagic, semSize)
	if err != nil {
		return nil, err
	}
	return newSemaphore(name, r), nil
}

func newSemaphore(name string, r *Region) *Semaphore {
	s := &Semaphore{value: r.U64(8), wl: newWaitlist(r, 64, uint32(os.Getpid()))}
	s.wl.onRepair = s.finishHandoff
	s.obj.init("semaphore", name, r)
	return s
}

// SetStatus makes the semaphore record its blocking waits in ws under the
// given object id (nil: don't record). Call it before using the semaphore.
func (s *Semaphore) SetStatus(ws *WaitStatus, object int32) { s.obj.setStatus(ws, object) }

// Name is the script's name for the semaphore.
func (s *Semaphore) Name() string { return s.obj.name }

// File is the memfd to hand to a child through ExtraFiles.
func (s *Semaphore) File() *os.File { return s.obj.region.File }

// Value is the current count (a snapshot: it may change at once).
func (s *Semaphore) Value() int {
	if s.obj.enter("value") != nil {
		return 0
	}
	defer s.obj.exit()
	return int(uint32(atomic.LoadUint64(s.value)))
}

// TryWait takes one unit if the value is positive, else returns ErrEmpty.
func (s *Semaphore) TryWait() error { return s.Wait(WaitOpts{NonBlocking: true}) }

// Wait takes one unit, sleeping while the value is 0; sleepers are served
// first come, first served. It returns ErrEmpty at once with NonBlocking,
// ErrTimeout when o.Timeout passes first.
func (s *Semaphore) Wait(o WaitOpts) error {
	if err := s.obj.enter("wait"); err != nil {
		return err
	}
	defer s.obj.exit()
	if s.tryFree() {
		s.obj.ws.Done()
		return nil
	}
	if o.NonBlocking {
		return ErrEmpty
	}
	deadline := o.Deadline()
	start := time.Now()
	if s.spin.spin(s.tryFree, start, deadline) {
		s.obj.ws.Done()
		return nil
	}
	s.obj.ws.Enter(OpWait, s.obj.id, -1, !deadline.IsZero())
	defer s.obj.ws.Leave()
	i, err := s.wl.joinWait(deadline, s.settle)
	if err != nil {
		return err
	}
	_, err = s.wl.sleep(i, deadline, s.obj.isClosed, 0, nil)
	if err != nil {
		s.wl.lock()
		st := s.wl.leave(i)
		s.wl.unlock()
		if st != slotGranted { // a grant that raced the timeout still counts
			if err == ErrClosed {
				return s.obj.errorf("wait", "semaphore was closed while waiting")
			}
			if err != ErrTimeout {
				return s.obj.errorf("wait", "futex: %v", err)
			}
			return err
		}
	} else {
		s.wl.slots[i].state.Store(slotFree) // the unit is ours; the slot is not needed
	}
	s.obj.ws.Done()
	return nil
}

// tryFree takes a free unit when nobody is queued before us.
func (s *Semaphore) tryFree() bool { return s.wl.queued() == 0 && s.tryDown() }

// tryDown decrements a positive value.
func (s *Semaphore) tryDown() bool { return s.take(0) }

// take decrements a positive value, recording flight (slot + 1 of the
// sleeper the unit goes to, or 0) in the high half in the same step.
func (s *Semaphore) take(flight uint64) bool {
	for {
		v := atomic.LoadUint64(s.value)
		if uint32(v) == 0 {
			return false
		}
		if atomic.CompareAndSwapUint64(s.value, v, v-1|flight<<32) {
			return true
		}
	}
}

// settle hands free units to the oldest sleepers (locked).
func (s *Semaphore) settle() {
	for s.wl.queued() > 0 {
		i := s.wl.oldest()
		if i < 0 || !s.take(uint64(i+1)) {
			return
		}
		hook(hookHandoff)
		s.wl.grant(i, slotGranted)
		atomic.AndUint64(s.value, math.MaxUint32) // the unit has arrived
	}
}

// finishHandoff is the waitlist's onRepair: a unit taken for a sleeper by
// a process that died before granting it is granted now (locked).
func (s *Semaphore) finishHandoff() {
	v := atomic.LoadUint64(s.value)
	if i := int(v>>32) - 1; i >= 0 && i < waitSlots && s.wl.slots[i].state.Load() == slotWaiting {
		s.wl.grant(i, slotGranted)
	}
	atomic.AndUint64(s.value, math.MaxUint32)
}

// Post adds n (>= 1) units; sleepers get them oldest first.
func (s *Semaphore) Post(n int) error {
	if err := s.obj.enter("post"); err != nil {
		return err
	}
	defer s.obj.exit()
	if n < 1 {
		return s.obj.errorf("post", "count %d must be at least 1", n)
	}
	for {
		v := atomic.LoadUint64(s.value)
		if uint64(uint32(v))+uint64(n) > SemMax {
			return s.obj.errorf("post", "value %d + %d would exceed the maximum %d", uint32(v), n, SemMax)
		}
		if atomic.CompareAndSwapUint64(s.value, v, v+uint64(n)) {
			break
		}
	}
	if s.wl.queued() > 0 {
		s.wl.lock()
		s.settle()
		s.wl.unlock()
	}
	s.obj.ws.Done()
	return nil
}

// Recover forgets the sleepers of process pid, which died: a unit already
// handed to one of them goes back to the others. The supervisor calls it
// for every child it reaps.
func (s *Semaphore) Recover(pid int) {
	if pid <= 0 || pid > math.MaxInt32 || s.obj.enter("recover") != nil {
		return
	}
	defer s.obj.exit()
	if !ownerDead(uint32(pid)) {
		return
	}
	s.wl.lockFor(uint32(pid))
	if g := s.wl.dropPid(uint32(pid)); g > 0 {
		atomic.AddUint64(s.value, uint64(g))
	}
	s.settle()
	s.wl.unlock()
}

// Close unmaps the semaphore in this process and closes its descriptor.
// Goroutines of this process sleeping in Wait are released with an error;
// other processes are not affected.
func (s *Semaphore) Close() error {
	return s.obj.close(s.wl.wakeAll)
}

// Granted reports whether process pid was woken by a grant it has not yet
// acted on (it is about to run, though its status still says it waits).
// The deadlock watch asks, so that a process woken on a busy machine and
// not yet scheduled is not taken for a deadlocked one.
func (s *Semaphore) Granted(pid int) bool {
	if pid <= 0 || s.obj.enter("granted") != nil {
		return false
	}
	defer s.obj.exit()
	return s.wl.granted(uint32(pid))
}
