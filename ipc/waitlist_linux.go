package ipc

import (
	"math"
	"sync/atomic"
	"time"
	"unsafe"
)

// A waitlist is a FIFO of sleeping processes in shared memory, the part
// that semaphores, mutexes and condition variables share. Each sleeper owns
// a slot with its own futex word, so a wake reaches exactly the sleeper it
// is meant for (the oldest, for FIFO fairness) instead of whichever
// process the kernel picks.
//
// Layout at off in a Region (waitlistSize bytes):
//
//	0   lock    a plock: holder pid | plockContended
//	4   queued  slots in state slotWaiting (read without the lock by fast
//	            paths: a newcomer does not barge past queued sleepers)
//	8   ticket  the next arrival number
//	12  journal the hand-off in progress, for the object (see onRepair)
//	16  waitSlots slots of 16 bytes: state (the futex word), pid, ticket
//
// Every change is made under the lock. A slot is published by one store of
// its state, after its pid and ticket are written; queued is derived and
// recomputed if a lock holder dies (repair).
//
// Crash safety. A sleeper killed in its sleep leaves a slot with a dead
// pid: Recover(pid) frees it, and an object whose grant went to the dead
// process passes it on. A process killed inside the short locked section
// is found by the next locker (the lock word holds its pid), which repairs
// the list: queued is recomputed from the slots, every granted slot is
// woken again (the grant's wake may not have been issued), and the object's
// onRepair finishes a hand-off the dead process had committed and not yet
// granted. A hand-off is committed by one atomic store that also records
// its slot (the mutex's lock word with handBit and the journal, the
// semaphore's value word with the slot in its high half), so a repair
// knows whether it happened: it is granted exactly once, never lost and
// never given twice.
type waitlist struct {
	lk    plock
	base  unsafe.Pointer
	slots *[waitSlots]waitSlot
	// onRepair, when set, runs under the lock when a repair finds the
	// previous holder dead, before queued is recomputed.
	onRepair func()
}

const (
	// waitSlots bounds how many processes (and goroutines) sleep on one
	// object at once; a further sleeper polls until a slot frees.
	waitSlots    = 1024
	waitlistSize = 16 + waitSlots*16
)

// Slot states.
const (
	slotFree       uint32 = 0
	slotWaiting    uint32 = 1
	slotGranted    uint32 = 2 // woken on purpose: the unit, lock or signal is the sleeper's
	slotGrantedBad uint32 = 3 // granted, and the previous owner died (a mutex)
)

type waitSlot struct {
	state  atomic.Uint32
	pid    atomic.Uint32
	ticket atomic.Uint32
	_      uint32
}

func newWaitlist(r *Region, off int, pid uint32) waitlist {
	_ = r.Mem[off+waitlistSize-1]
	return waitlist{
		lk:    plock{w: r.U32(off), pid: pid},
		base:  unsafe.Pointer(&r.Mem[off]),
		slots: (*[waitSlots]waitSlot)(unsafe.Pointer(&r.Mem[off+16])),
	}
}

func (w *waitlist) queuedWord() *atomic.Uint32 { return (*atomic.Uint32)(unsafe.Add(w.base, 4)) }
func (w *waitlist) ticketWord() *atomic.Uint32 { return (*atomic.Uint32)(unsafe.Add(w.base, 8)) }

// journalWord holds, while an object hands something to a slot, the slot
// + 1 and the object's flags above journalSlot (0: no hand-off).
func (w *waitlist) journalWord() *atomic.Uint32 { return (*atomic.Uint32)(unsafe.Add(w.base, 12)) }

const journalSlot = 1<<16 - 1

// queued is the number of sleepers not yet granted.
func (w *waitlist) queued() uint32 { return w.queuedWord().Load() }

// lock takes the list's lock, repairing the list when the holder died.
func (w *waitlist) lock() {
	if w.lk.lock() {
		w.repair()
	}
}

func (w *waitlist) unlock() { w.lk.unlock() }

// lockFor takes the lock for Recover(pid): at once when the dead pid holds
// it.
func (w *waitlist) lockFor(pid uint32) {
	if w.lk.takeOver(pid) {
		w.repair()
		return
	}
	w.lock()
}

// joinWait is join under the lock, polling while every slot is taken;
// settle runs under the same lock after the join (it may grant the new
// sleeper at once).
func (w *waitlist) joinWait(deadline time.Time, settle func()) (int, error) {
	for {
		w.lock()
		i := w.join()
		if i >= 0 && settle != nil {
			settle()
		}
		w.unlock()
		if i >= 0 {
			return i, nil
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return -1, ErrTimeout
		}
		time.Sleep(time.Millisecond)
	}
}

// repair puts the list right after a lock holder died inside the locked
// section (locked): the object finishes the hand-off the dead process had
// committed, queued is recomputed, and granted sleepers are woken again.
func (w *waitlist) repair() {
	if w.onRepair != nil {
		w.onRepair()
	}
	w.journalWord().Store(0)
	var n uint32
	for i := range w.slots {
		s := &w.slots[i]
		switch s.state.Load() {
		case slotWaiting:
			n++
		case slotGranted, slotGrantedBad:
			FutexWake((*uint32)(unsafe.Pointer(&s.state)), 1)
		}
	}
	w.queuedWord().Store(n)
}

// join adds a sleeper for this process at the end of the list (locked).
// It returns -1 when every slot is taken.
func (w *waitlist) join() int {
	for i := range w.slots {
		s := &w.slots[i]
		if s.state.Load() == slotFree {
			s.pid.Store(w.lk.pid)
			s.ticket.Store(w.ticketWord().Add(1))
			s.state.Store(slotWaiting)
			w.queuedWord().Add(1)
			return i
		}
	}
	return -1
}

// oldest is the waiting slot that arrived first, or -1 (locked).
func (w *waitlist) oldest() int {
	best, left := -1, w.queued()
	var bt uint32
	for i := 0; i < waitSlots && left > 0; i++ {
		s := &w.slots[i]
		if s.state.Load() != slotWaiting {
			continue
		}
		left--
		if t := s.ticket.Load(); best < 0 || int32(t-bt) < 0 {
			best, bt = i, t
		}
	}
	return best
}

// grant wakes the sleeper in slot i with state st (locked).
func (w *waitlist) grant(i int, st uint32) {
	s := &w.slots[i]
	s.state.Store(st)
	hook(hookGrantStored)
	w.queuedWord().Add(^uint32(0))
	FutexWake((*uint32)(unsafe.Pointer(&s.state)), 1)
}

// leave frees slot i, which this process owns (locked), and returns the
// state it had: a grant that raced a timeout is the caller's to keep.
func (w *waitlist) leave(i int) uint32 {
	s := &w.slots[i]
	st := s.state.Load()
	if st == slotWaiting {
		w.queuedWord().Add(^uint32(0))
	}
	s.state.Store(slotFree)
	return st
}

// dropPid frees every slot of the dead process pid (locked) and returns how
// many of them had been granted and not taken.
func (w *waitlist) dropPid(pid uint32) (granted int) {
	for i := range w.slots {
		s := &w.slots[i]
		st := s.state.Load()
		if st == slotFree || s.pid.Load() != pid {
			continue
		}
		if st != slotWaiting {
			granted++
		}
		w.leave(i)
	}
	return granted
}

// dropDead frees the waiting slots of sleepers whose process is gone
// (locked), other than self's. A repair that finds one dead process calls
// it, so that sleepers killed in their sleep and not yet recovered by the
// supervisor leave the list together: otherwise each of them in turn is
// handed the lock and found dead by a sleeper's periodic check, one per
// check period, and a list that fills faster than that (processes killed
// every few milliseconds while they wait, as TestMutexStressKills does on a
// loaded machine) starves the live sleepers behind them. It reads /proc for
// each live sleeper: a repair's cost, never an unlock's.
func (w *waitlist) dropDead(self uint32) {
	for i := range w.slots {
		s := &w.slots[i]
		if s.state.Load() != slotWaiting {
			continue
		}
		if pid := s.pid.Load(); pid != self && ownerDead(pid) {
			w.leave(i)
		}
	}
}

// granted reports whether process pid has a slot that was granted and not
// yet taken: it has been woken and will run (read without the lock, for
// the deadlock watch).
func (w *waitlist) granted(pid uint32) bool {
	for i := range w.slots {
		s := &w.slots[i]
		if st := s.state.Load(); (st == slotGranted || st == slotGrantedBad) && s.pid.Load() == pid {
			return true
		}
	}
	return false
}

// pidOf is the pid of slot i's sleeper.
func (w *waitlist) pidOf(i int) uint32 { return w.slots[i].pid.Load() }

// sleep waits until slot i is granted, the deadline passes (ErrTimeout),
// closed reports true (ErrClosed) or check, called every checkEvery when
// not nil, returns an error. On an error the slot is still this process's
// and the caller leaves it (and keeps a grant that raced it).
func (w *waitlist) sleep(i int, deadline time.Time, closed func() bool, checkEvery time.Duration, check func() error) (uint32, error) {
	s := &w.slots[i]
	word := (*uint32)(unsafe.Pointer(&s.state))
	for {
		if st := s.state.Load(); st != slotWaiting {
			return st, nil
		}
		if closed() {
			return 0, ErrClosed
		}
		wake := deadline
		if check != nil {
			if t := time.Now().Add(checkEvery); wake.IsZero() || t.Before(wake) {
				wake = t
			}
		}
		err := FutexWait(word, slotWaiting, wake)
		switch {
		case err == nil:
		case err != ErrTimeout:
			return 0, err
		case !deadline.IsZero() && !time.Now().Before(deadline):
			return 0, ErrTimeout
		case check != nil:
			if err := check(); err != nil {
				return 0, err
			}
		}
	}
}

// wakeAll wakes every sleeper of this list in this process (for Close:
// they then see closed).
func (w *waitlist) wakeAll() {
	for i := range w.slots {
		s := &w.slots[i]
		if s.state.Load() == slotWaiting && s.pid.Load() == w.lk.pid {
			FutexWake((*uint32)(unsafe.Pointer(&s.state)), math.MaxInt32)
		}
	}
}

// plock is a short lock on a futex word that holds its owner's pid, with
// plockContended set when someone may sleep on it. Sections under it are a
// few hundred nanoseconds and never sleep, so a locker spins first. A
// locker that finds the owner dead takes the lock over and is told so.
type plock struct {
	w   *uint32
	pid uint32
}

const plockContended = 1 << 31

func (l plock) lock() (ownerDied bool) {
	if atomic.CompareAndSwapUint32(l.w, 0, l.pid) {
		return false
	}
	for i := 0; spinning && i < 4*lockSpins; i++ {
		if atomic.LoadUint32(l.w) == 0 && atomic.CompareAndSwapUint32(l.w, 0, l.pid) {
			return false
		}
	}
	for {
		v := atomic.LoadUint32(l.w)
		if v == 0 {
			if atomic.CompareAndSwapUint32(l.w, 0, l.pid|plockContended) {
				return false
			}
			continue
		}
		if v&plockContended == 0 {
			if !atomic.CompareAndSwapUint32(l.w, v, v|plockContended) {
				continue
			}
			v |= plockContended
		}
		if FutexWait(l.w, v, time.Now().Add(lockCheck)) == ErrTimeout {
			owner := v &^ plockContended
			if owner != l.pid && ownerDead(owner) && atomic.CompareAndSwapUint32(l.w, v, l.pid|plockContended) {
				return true
			}
		}
	}
}

func (l plock) unlock() {
	if atomic.SwapUint32(l.w, 0)&plockContended != 0 {
		FutexWake(l.w, 1)
	}
}

// takeOver takes the lock from pid if pid holds it and is dead (for
// Recover, called by the supervisor that reaped pid).
func (l plock) takeOver(pid uint32) bool {
	for {
		v := atomic.LoadUint32(l.w)
		if v == 0 || v&^plockContended != pid || !ownerDead(pid) {
			return false
		}
		if atomic.CompareAndSwapUint32(l.w, v, l.pid|plockContended) {
			return true
		}
	}
}
