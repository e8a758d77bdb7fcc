package ipc

import (
	"math"
	"os"
	"sync/atomic"
	"time"
)

// Mutex is a mutual-exclusion lock shared by the processes of a run, in a
// Region. Ownership is per process: the lock word holds the holder's pid, so
// any goroutine of the holding process may unlock it, and goroutines of one
// process still exclude each other (a second Lock from the same process
// waits like any other; it does not nest).
//
// Layout of the memfd (64 bytes):
//
//	0  magic
//	4  lock word: 0 free; holder pid | waitersBit while held; ownerDiedBit
//	   alone when free because the last holder died (see Recover)
//
// A holder that dies holding the lock does not hang the others. Sleepers
// wake at least every mutexCheckEvery to check that the holder is alive
// (kill(pid, 0), and not a zombie), and take the lock over from a dead one;
// the supervisor, which reaps every child, also calls Recover with the pid
// at once. Either way the next Lock succeeds and reports ownerDied, so the
// script can repair what the dead holder left half-done.
type Mutex struct {
	obj  regionObject
	word *uint32
	pid  uint32
	spin spinner // semaphore.go
}

const (
	mutexMagic   = 0x58544d49 // "IMTX"
	mutexSize    = 64
	pidMask      = 1<<30 - 1
	ownerDiedBit = 1 << 30
	waitersBit   = 1 << 31
	// mutexCheckEvery bounds how long a sleeper goes without checking that
	// the holder is still alive.
	mutexCheckEvery = 75 * time.Millisecond
)

// NewMutex creates an unlocked mutex. name is the script's name for it, used
// in errors.
func NewMutex(name string) (*Mutex, error) {
	r, err := NewRegion("mutex:"+name, mutexSize)
	if err != nil {
		o := regionObject{kind: "mutex", name: name}
		return nil, o.errorf("create", "%v", err)
	}
	store32(r.U32(0), mutexMagic)
	return newMutex(name, r), nil
}

// OpenMutex maps a mutex created by NewMutex from its inherited memfd. The
// Mutex owns f from then on.
func OpenMutex(f *os.File, name string) (*Mutex, error) {
	r, err := openRegionChecked(f, "mutex", name, mutexMagic, mutexSize)
	if err != nil {
		return nil, err
	}
	return newMutex(name, r), nil
}

func newMutex(name string, r *Region) *Mutex {
	m := &Mutex{word: r.U32(4), pid: uint32(os.Getpid())}
	m.obj.init("mutex", name, r)
	return m
}

// SetStatus makes the mutex record its blocking waits in ws under the given
// object id (nil: don't record). Call it before using the mutex.
func (m *Mutex) SetStatus(ws *WaitStatus, object int32) { m.obj.setStatus(ws, object) }

// Name is the script's name for the mutex.
func (m *Mutex) Name() string { return m.obj.name }

// File is the memfd to hand to a child through ExtraFiles.
func (m *Mutex) File() *os.File { return m.obj.region.File }

// Holder is the pid of the process holding the mutex, or 0.
func (m *Mutex) Holder() int {
	if m.obj.enter("holder") != nil {
		return 0
	}
	defer m.obj.exit()
	return int(load32(m.word) & pidMask)
}

// TryLock is Lock without waiting.
func (m *Mutex) TryLock() (ownerDied bool, err error) { return m.Lock(WaitOpts{NonBlocking: true}) }

// Lock acquires the mutex. ownerDied is true when the previous holder died
// holding it: the lock is now this process's, and the state it guarded may
// be half-updated. With NonBlocking a held mutex returns ErrEmpty at once
// (as a semaphore of 1 would); ErrTimeout when o.Timeout passes first.
func (m *Mutex) Lock(o WaitOpts) (ownerDied bool, err error) {
	if err := m.obj.enter("lock"); err != nil {
		return false, err
	}
	defer m.obj.exit()
	if atomic.CompareAndSwapUint32(m.word, 0, m.pid) {
		m.obj.ws.Done()
		return false, nil
	}
	return m.lockSlow(o)
}

func (m *Mutex) lockSlow(o WaitOpts) (ownerDied bool, err error) {
	deadline := o.Deadline()
	slept, checkOwner, entered := false, true, false
	defer func() {
		if entered {
			m.obj.ws.Leave()
		}
		if err == nil {
			m.obj.ws.Done()
		}
	}()
	start := time.Now()
	if !o.NonBlocking && m.spin.spin(func() bool {
		v := load32(m.word)
		ownerDied = v&ownerDiedBit != 0
		return v&pidMask == 0 && atomic.CompareAndSwapUint32(m.word, v, m.pid|v&waitersBit)
	}, start, deadline) {
		return ownerDied, nil
	}
	for {
		v := load32(m.word)
		if v&pidMask == 0 { // free (maybe after a holder died)
			nv := m.pid | v&waitersBit
			if slept {
				// Others may sleep too: whoever holds the lock after a
				// sleeper must wake the next one on Unlock.
				nv |= waitersBit
			}
			if atomic.CompareAndSwapUint32(m.word, v, nv) {
				if slept {
					m.spin.slept(start)
				}
				return v&ownerDiedBit != 0, nil
			}
			continue
		}
		if owner := v & pidMask; checkOwner && owner != m.pid {
			checkOwner = false
			if ownerDead(owner) { // queue_lock_linux.go
				if atomic.CompareAndSwapUint32(m.word, v, m.pid|waitersBit) {
					return true, nil
				}
				checkOwner = true
				continue
			}
		}
		if o.NonBlocking {
			return false, ErrEmpty
		}
		if m.obj.isClosed() {
			return false, m.obj.errorf("lock", "mutex was closed while waiting")
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return false, ErrTimeout
		}
		if v&waitersBit == 0 {
			if !atomic.CompareAndSwapUint32(m.word, v, v|waitersBit) {
				continue
			}
			v |= waitersBit
		}
		if !entered {
			entered = true
			m.obj.ws.Enter(OpLock, m.obj.id, -1, !deadline.IsZero())
		}
		wake := time.Now().Add(mutexCheckEvery)
		if !deadline.IsZero() && deadline.Before(wake) {
			wake = deadline
		}
		switch err := FutexWait(m.word, v, wake); err {
		case nil:
		case ErrTimeout:
			checkOwner = true
		default:
			return false, m.obj.errorf("lock", "futex: %v", err)
		}
		slept = true
	}
}

// Unlock releases the mutex. Unlocking a mutex this process does not hold
// is an error that names the holder.
func (m *Mutex) Unlock() error {
	if err := m.obj.enter("unlock"); err != nil {
		return err
	}
	defer m.obj.exit()
	for {
		v := load32(m.word)
		switch owner := v & pidMask; {
		case owner == 0:
			return m.obj.errorf("unlock", "not held by any process")
		case owner != m.pid:
			return m.obj.errorf("unlock", "not held by this process (held by pid %d)", owner)
		}
		if atomic.CompareAndSwapUint32(m.word, v, 0) {
			if v&waitersBit != 0 {
				FutexWake(m.word, 1)
			}
			m.obj.ws.Done()
			return nil
		}
	}
}

// Recover releases the mutex if the process pid holds it, marking it so the
// next Lock reports ownerDied, and wakes a sleeper. The supervisor calls it
// for every child it reaps; it reports whether pid held the mutex.
func (m *Mutex) Recover(pid int) bool {
	if pid <= 0 || pid > pidMask || m.obj.enter("recover") != nil {
		return false
	}
	defer m.obj.exit()
	for {
		v := load32(m.word)
		if v&pidMask != uint32(pid) {
			return false
		}
		if atomic.CompareAndSwapUint32(m.word, v, ownerDiedBit) {
			if v&waitersBit != 0 {
				FutexWake(m.word, 1)
			}
			return true
		}
	}
}

// Close unmaps the mutex in this process and closes its descriptor.
// Goroutines of this process sleeping in Lock are released with an error. A
// lock this process holds stays held until the process exits (then the
// others see its owner died).
func (m *Mutex) Close() error {
	return m.obj.close(func() { FutexWake(m.word, math.MaxInt32) })
}
