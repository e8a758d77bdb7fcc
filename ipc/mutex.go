package ipc

import (
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
// Layout of the memfd:
//
//	0   magic
//	4   lock word: 0 free; holder pid while held (with handBit when it was
//	    handed over by an unlock); ownerDiedBit alone when free because
//	    the last holder died (see Recover)
//	64  waitlist: the sleepers, oldest first (waitlist_linux.go)
//
// Fairness: the lock is handed to sleepers in the order they began to
// wait. Unlock with sleepers queued gives the lock to the oldest directly
// (its pid goes into the lock word), and a Lock that finds sleepers queued
// joins the end of the queue; only a Lock that finds nobody queued takes a
// free lock at once (one compare-and-swap, no system call).
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
	wl   waitlist
	pid  uint32
	spin spinner // semaphore.go
}

const (
	mutexMagic   = 0x58544d49 // "IMTX"
	mutexSize    = 64 + waitlistSize
	pidMask      = 1<<30 - 1
	ownerDiedBit = 1 << 30
	// handBit marks a lock word set by a hand-off (settle): with the
	// waitlist's journal it tells a repair that the hand-off to the
	// journal's slot was committed, even when that slot's process also
	// holds the lock through another goroutine.
	handBit = 1 << 31
	// journalBad: the journal's hand-off passes on a dead holder's lock.
	journalBad = 1 << 16
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
	pid := uint32(os.Getpid())
	m := &Mutex{word: r.U32(4), pid: pid, wl: newWaitlist(r, 64, pid)}
	m.wl.onRepair = m.finishHandoff
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

// Lock acquires the mutex; sleepers get it first come, first served.
// ownerDied is true when the previous holder died holding it: the lock is
// now this process's, and the state it guarded may be half-updated. With
// NonBlocking a held mutex (or one others are queued for) returns ErrEmpty
// at once, as a semaphore of 1 would; ErrTimeout when o.Timeout passes
// first.
func (m *Mutex) Lock(o WaitOpts) (ownerDied bool, err error) {
	if err := m.obj.enter("lock"); err != nil {
		return false, err
	}
	defer m.obj.exit()
	if m.wl.queued() == 0 && atomic.CompareAndSwapUint32(m.word, 0, m.pid) {
		m.obj.ws.Done()
		return false, nil
	}
	return m.lockSlow(o)
}

// tryFree takes a free lock when nobody is queued before us.
func (m *Mutex) tryFree() (ok, ownerDied bool) {
	if m.wl.queued() != 0 {
		return false, false
	}
	v := load32(m.word)
	if v&pidMask != 0 || !atomic.CompareAndSwapUint32(m.word, v, m.pid) {
		return false, false
	}
	return true, v&ownerDiedBit != 0
}

func (m *Mutex) lockSlow(o WaitOpts) (ownerDied bool, err error) {
	deadline := o.Deadline()
	defer func() {
		if err == nil {
			m.obj.ws.Done()
		}
	}()
	if ok, died := m.tryFree(); ok {
		return died, nil
	}
	if o.NonBlocking {
		return false, ErrEmpty
	}
	start := time.Now()
	if m.spin.spin(func() bool {
		var ok bool
		ok, ownerDied = m.tryFree()
		return ok
	}, start, deadline) {
		return ownerDied, nil
	}
	// The wait names the holder as its peer (a deadlock report then says
	// who holds the lock); checkHolder keeps it true as the lock changes
	// hands.
	m.obj.ws.Enter(OpLock, m.obj.id, int32(load32(m.word)&pidMask), !deadline.IsZero())
	defer m.obj.ws.Leave()
	i, err := m.wl.joinWait(deadline, m.settle)
	if err != nil {
		return false, err
	}
	st, err := m.wl.sleep(i, deadline, m.obj.isClosed, mutexCheckEvery, m.checkHolder)
	if err != nil {
		m.wl.lock()
		st = m.wl.leave(i)
		m.wl.unlock()
		if st == slotWaiting {
			switch err {
			case ErrTimeout:
				return false, err
			case ErrClosed:
				return false, m.obj.errorf("lock", "mutex was closed while waiting")
			}
			return false, m.obj.errorf("lock", "futex: %v", err)
		}
	} else {
		m.wl.slots[i].state.Store(slotFree)
	}
	return st == slotGrantedBad, nil
}

// settle hands a free lock to the oldest sleeper (locked).
func (m *Mutex) settle() {
	for m.wl.queued() > 0 {
		v := load32(m.word)
		if v&pidMask != 0 {
			return
		}
		i := m.wl.oldest()
		if i < 0 {
			return
		}
		// The journal first, then the commit (the lock word), then the
		// grant: a process killed in between leaves a repair what it needs.
		j, st := uint32(i+1), slotGranted
		if v&ownerDiedBit != 0 {
			j, st = j|journalBad, slotGrantedBad
		}
		m.wl.journalWord().Store(j)
		if atomic.CompareAndSwapUint32(m.word, v, m.wl.pidOf(i)|handBit) {
			hook(hookHandoff)
			m.wl.grant(i, st)
			m.wl.journalWord().Store(0)
			return
		}
		m.wl.journalWord().Store(0)
	}
}

// finishHandoff is the waitlist's onRepair: a settle that died after its
// commit (the lock word names the journal's slot, with handBit) and before
// its grant is granted now (locked).
func (m *Mutex) finishHandoff() {
	j := m.wl.journalWord().Load()
	if j == 0 {
		return
	}
	i := int(j&journalSlot) - 1
	if i < 0 || i >= waitSlots {
		return
	}
	s := &m.wl.slots[i]
	if s.state.Load() != slotWaiting || load32(m.word) != s.pid.Load()|handBit {
		return // not committed, or already granted
	}
	st := slotGranted
	if j&journalBad != 0 {
		st = slotGrantedBad
	}
	m.wl.grant(i, st)
}

// checkHolder is a sleeper's periodic look at the holder: a dead holder's
// lock is released (and handed on) as Recover would.
func (m *Mutex) checkHolder() error {
	h := load32(m.word) & pidMask
	if h != 0 && h != m.pid && ownerDead(h) {
		m.recover(h)
	}
	if h == m.pid {
		// The lock names this process while this sleeper still waits:
		// another goroutine of it holds the lock, or a hand-off to this
		// sleeper was cut short by the death of the unlocker inside the
		// waitlist's lock. Taking that lock repairs the list if so.
		m.wl.lock()
		m.wl.unlock()
	}
	if m.obj.ws != nil {
		atomic.StoreInt32(&m.obj.ws.Peer, int32(h))
	}
	return nil
}

// Unlock releases the mutex, handing it to the oldest sleeper if any.
// Unlocking a mutex this process does not hold is an error that names the
// holder.
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
			break
		}
	}
	if m.wl.queued() > 0 {
		m.wl.lock()
		m.settle()
		m.wl.unlock()
	}
	m.obj.ws.Done()
	return nil
}

// Recover releases the mutex if the process pid, which died, holds it (a
// live pid is left alone: it may be a reused one), marking it so the
// next Lock reports ownerDied, forgets pid's sleepers and hands the lock on.
// The supervisor calls it for every child it reaps; it reports whether pid
// held the mutex.
func (m *Mutex) Recover(pid int) bool {
	if pid <= 0 || pid > pidMask || m.obj.enter("recover") != nil {
		return false
	}
	defer m.obj.exit()
	return m.recover(uint32(pid))
}

func (m *Mutex) recover(pid uint32) bool {
	if !ownerDead(pid) {
		// A live process keeps its lock and its sleepers: Recover of a pid
		// reused by a new process (reaped, then Recover called late) must
		// not take the lock from under it.
		return false
	}
	m.wl.lockFor(pid)
	defer m.wl.unlock()
	m.wl.dropPid(pid)
	held := false
	for {
		v := load32(m.word)
		if v&pidMask != pid {
			break
		}
		if atomic.CompareAndSwapUint32(m.word, v, ownerDiedBit) {
			held = true
			break
		}
	}
	if held {
		// It may have been handed the lock while it lay dead in the
		// list: the others who died there go too, before the hand-off.
		m.wl.dropDead(m.pid)
	}
	m.settle()
	return held
}

// Close unmaps the mutex in this process and closes its descriptor.
// Goroutines of this process sleeping in Lock are released with an error. A
// lock this process holds stays held until the process exits (then the
// others see its owner died).
func (m *Mutex) Close() error {
	return m.obj.close(m.wl.wakeAll)
}

// Granted reports whether process pid was woken by a grant it has not yet
// acted on (it is about to run, though its status still says it waits).
// The deadlock watch asks, so that a process woken on a busy machine and
// not yet scheduled is not taken for a deadlocked one.
func (m *Mutex) Granted(pid int) bool {
	if pid <= 0 || m.obj.enter("granted") != nil {
		return false
	}
	defer m.obj.exit()
	return m.wl.granted(uint32(pid))
}
