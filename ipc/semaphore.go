package ipc

import (
	"math"
	"os"
	"sync/atomic"
	"time"
)

// Semaphore is a counting semaphore shared by the processes of a run: a
// futex word holding the value and a count of sleepers, in a Region.
//
// Layout of the memfd (64 bytes):
//
//	0  magic
//	4  value    the count, the futex word waiters sleep on while it is 0
//	8  waiters  processes (and goroutines) inside Wait that may sleep
//
// No lost wakeups: a waiter adds itself to waiters before FUTEX_WAIT
// re-checks that value is still 0 in the kernel; Post raises value before
// it reads waiters. Either Post sees the waiter and wakes it, or the waiter's
// FUTEX_WAIT sees the new value and does not sleep. Post makes no system
// call when nobody waits.
type Semaphore struct {
	obj     regionObject
	value   *uint32
	waiters *uint32
	spin    spinner
}

const (
	semMagic = 0x4d455349 // "ISEM"
	semSize  = 64
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
	store32(r.U32(4), uint32(initial))
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
	s := &Semaphore{value: r.U32(4), waiters: r.U32(8)}
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
	return int(load32(s.value))
}

// TryWait takes one unit if the value is positive, else returns ErrEmpty.
func (s *Semaphore) TryWait() error { return s.Wait(WaitOpts{NonBlocking: true}) }

// Wait takes one unit, sleeping while the value is 0. It returns ErrEmpty
// at once with NonBlocking, ErrTimeout when o.Timeout passes first.
func (s *Semaphore) Wait(o WaitOpts) error {
	if err := s.obj.enter("wait"); err != nil {
		return err
	}
	defer s.obj.exit()
	if s.tryDown() {
		s.obj.ws.Done()
		return nil
	}
	if o.NonBlocking {
		return ErrEmpty
	}
	deadline := o.Deadline()
	start := time.Now()
	if s.spin.spin(s.tryDown, start, deadline) {
		s.obj.ws.Done()
		return nil
	}
	s.obj.ws.Enter(OpWait, s.obj.id, -1, !deadline.IsZero())
	defer s.obj.ws.Leave()
	atomic.AddUint32(s.waiters, 1)
	defer atomic.AddUint32(s.waiters, ^uint32(0))
	for {
		if s.tryDown() {
			s.spin.slept(start)
			s.obj.ws.Done()
			return nil
		}
		if s.obj.isClosed() {
			return s.obj.errorf("wait", "semaphore was closed while waiting")
		}
		switch err := FutexWait(s.value, 0, deadline); err {
		case nil:
		case ErrTimeout:
			if s.tryDown() { // a post that raced the deadline still counts
				s.obj.ws.Done()
				return nil
			}
			return ErrTimeout
		default:
			return s.obj.errorf("wait", "futex: %v", err)
		}
	}
}

// tryDown decrements a positive value.
func (s *Semaphore) tryDown() bool {
	for {
		v := load32(s.value)
		if v == 0 {
			return false
		}
		if atomic.CompareAndSwapUint32(s.value, v, v-1) {
			return true
		}
	}
}

// Post adds n (>= 1) units and wakes up to n sleepers.
func (s *Semaphore) Post(n int) error {
	if err := s.obj.enter("post"); err != nil {
		return err
	}
	defer s.obj.exit()
	if n < 1 {
		return s.obj.errorf("post", "count %d must be at least 1", n)
	}
	for {
		v := load32(s.value)
		if uint64(v)+uint64(n) > SemMax {
			return s.obj.errorf("post", "value %d + %d would exceed the maximum %d", v, n, SemMax)
		}
		if atomic.CompareAndSwapUint32(s.value, v, v+uint32(n)) {
			break
		}
	}
	if load32(s.waiters) > 0 {
		FutexWake(s.value, n)
	}
	s.obj.ws.Done()
	return nil
}

// Close unmaps the semaphore in this process and closes its descriptor.
// Goroutines of this process sleeping in Wait are released with an error;
// other processes are not affected.
func (s *Semaphore) Close() error {
	return s.obj.close(func() { FutexWake(s.value, math.MaxInt32) })
}
