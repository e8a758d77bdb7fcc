package ipc

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Waiting for room. A sender that finds the queue full (or the ring's
// bytes exhausted) waits on its own futex word, room, so that a take wakes
// one sleeping sender rather than every sleeper: with 16 producers on one
// consumer, waking all of them on every take made 15 run for nothing, and
// producers spinning for room took the CPU the consumer needed (16 -> 1
// fell to 0.14x the 1 -> 1 rate). So:
//   - one sender spins at a time (roomSpinner, in a mailbox; in a
//     PerSender queue, whose room is per sender, only one that waits
//     alone); others sleep at once. While a sender spins, a take wakes
//     nobody: the spinner takes the room, and once it has sent it wakes a
//     sleeper itself if room is left (roomLeft). With 16 producers the
//     consumer then issued a FUTEX_WAKE for about every message taken
//     (1-2 us of the consumer's time, the bottleneck); with a spinner a
//     16 -> 1 run behaves like 1 -> 1 while the spinner keeps up;
//   - a take wakes one sleeper (all of them on a PerSender queue, where
//     room is per sender), and no other until a sleeper has run again or a
//     sender has gone to sleep since (roomWoken, cleared by both): the
//     woken sender fills the room it finds, and the next take wakes the
//     next. A wake can therefore only be skipped while one issued after
//     the latest sleep is still on its way.
//
//   - in a mailbox of capacity roomBatchMin or more, a sleeper is woken only
//     once the queue is down to its low-water mark (roomLow: a quarter of
//     the capacity): a take, or a send's end, that leaves more queued
//     defers its wake (roomDebt). Woken at every take, a sender arrived a
//     wake-up later (~40-100 us on a VM, more with 16 producers on 2
//     CPUs), found the queue refilled by the sender that was running, and
//     slept again: a wake and two context switches for nothing, and a
//     woken producer placed on the consumer's CPU preempted it. Per
//     message, Lua, medians of 10 runs at load ~9: 16 -> 1 room sleeps
//     0.022 -> 0.011, room wakes 0.021 -> 0.011, the consumer's
//     involuntary context switches 0.0074 -> 0.0027; 1 -> 1 the
//     consumer's sleeps 0.016 -> 0.003. Above the mark the queue holds
//     enough for a sender to be woken in time.
//
// Why a deferred wake is not lost. Whoever defers a wake (a take, or a
// sender's roomLeft) owes it (roomDebt.owe): unless its debt is already
// due, it arms a timer of roomDebtDelay, at whose end it wakes as
// wakeRoom does without the mark (payDebt), so a sender never sleeps
// longer than that past room it was not woken for, whatever the process
// that owes does meanwhile (computes, waits for something else). It pays
// earlier when it waits on this queue to receive, and when it closes the
// queue; a process that exits owing is paid for by Recover, which the
// supervisor calls at every exit. Takes made meanwhile that bring the queue
// to the mark wake at once. The timer runs on the process's own Go
// runtime: with SetHoldP (one P, held sleeps) it fires at most holdMax
// late, and Go's preemption lets it run while the Lua state computes.
//
// A sleeper killed after a wake leaves roomWoken set; sleepers check the
// queue every roomCheck, clearing it, and Recover clears it too.

// Test hooks of the room protocol (hook, queue_lock_linux.go).
const (
	hookRoomClaimed  hookPoint = iota + 100 // a Send claimed the spinner mark at its start, not yet locked
	hookRoomSent                            // a Send committed its record, its releaseRoom not yet called
	hookRoomDebtPaid                        // a deferred room wake's timer fired, its wake not yet issued
)

// roomCheck is how often a sender asleep for room wakes by itself (a
// variable for tests).
var roomCheck = time.Second

// roomBatchMin is the smallest mailbox capacity whose room wakes wait for
// the low-water mark (roomLow); smaller queues hold too little to wait.
const roomBatchMin = 8

// roomDebtDelay bounds how long a deferred room wake waits (a variable for
// tests).
var roomDebtDelay = time.Millisecond

// roomLow says whether a room wake may be deferred now: a mailbox of
// roomBatchMin or more with more than a quarter of its capacity queued.
func (q *Queue) roomLow() bool {
	h := q.h
	c := h.capacity
	return h.perSender != 0 || c < roomBatchMin || h.count.Load() <= uint32(c/4)
}

// roomDebt is a view's deferred room wake: a timer that pays it.
type roomDebt struct {
	due    atomic.Bool // a wake is owed and the timer armed
	mu     sync.Mutex  // guards t and closed against Close
	t      *time.Timer
	closed bool
}

// owe records a deferred room wake: the timer pays it within
// roomDebtDelay unless it is already armed.
func (q *Queue) owe() {
	d := &q.debt
	if d.due.Load() || !d.due.CompareAndSwap(false, true) {
		return
	}
	d.mu.Lock()
	if !d.closed {
		if d.t == nil {
			d.t = time.AfterFunc(roomDebtDelay, q.payDebt)
		} else {
			d.t.Reset(roomDebtDelay)
		}
	}
	d.mu.Unlock()
}

// payDebt wakes a sleeper for room, if room is left, whatever the
// low-water mark (the timer's function). due is cleared first: a wake
// deferred after this look arms the timer again.
func (q *Queue) payDebt() {
	d := &q.debt
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.due.Store(false)
	hook(hookRoomDebtPaid)
	if q.roomFree() {
		q.wakeRoomNow()
	}
}

// roomFree says whether the queue has room for one more message in total
// (a mailbox's capacity; any on a PerSender queue or an unbounded one).
func (q *Queue) roomFree() bool {
	c := q.h.capacity
	return q.h.perSender != 0 || c <= 0 || q.h.count.Load() < uint32(c)
}

// settle drops this view's deferred wake, which the caller covers, and
// stops its timer: a timer that fires needlessly wakes this process's
// thread (1 -> 1, Lua: about one context switch per 50 messages).
func (q *Queue) settle() {
	d := &q.debt
	if !d.due.Load() || !d.due.CompareAndSwap(true, false) {
		return
	}
	d.mu.Lock()
	if !d.due.Load() && d.t != nil { // not owed again meanwhile
		d.t.Stop()
	}
	d.mu.Unlock()
}

// payDebtNow pays a deferred wake before this view waits to receive.
func (q *Queue) payDebtNow() {
	if q.debt.due.Load() && q.debt.due.CompareAndSwap(true, false) && q.roomFree() {
		q.wakeRoomNow()
	}
}

// closeDebt pays a deferred wake and stops the timer (Close): the view's
// memory goes away.
func (q *Queue) closeDebt() {
	d := &q.debt
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.t != nil {
		d.t.Stop()
	}
	d.closed = true
	if d.due.Swap(false) && q.roomFree() {
		q.wakeRoomNow()
	}
}

func (q *Queue) roomWord() *uint32 { return (*uint32)(unsafe.Pointer(&q.h.room)) }

// waitRoom waits for room to change from seen, until deadline (zero =
// forever). It returns nil when room changed (or spuriously), ErrTimeout at
// the deadline.
//
// *held says whether this sender holds the spinner mark (a mailbox only):
// a sender that spun and got room keeps it (*held true) until its Send
// ends (Send's releaseRoom), so that the takes made while it sends skip
// their wakes too; one that gives up releases it here.
func (q *Queue) waitRoom(seen uint32, deadline time.Time, held *bool) error {
	h := q.h
	alone := h.roomWaiting.Add(1) == 1
	defer h.roomWaiting.Add(^uint32(0))
	start := time.Now()
	spinner := spinning && (h.perSender == 0 && (*held || h.roomSpinner.CompareAndSwap(0, q.pid)) || h.perSender != 0 && alone)
	if spinner {
		got := q.spin.spin(func() bool { return h.room.Load() != seen }, start, deadline)
		if h.perSender == 0 {
			if got {
				*held = true
				return nil
			}
			*held = false
			h.roomSpinner.CompareAndSwap(q.pid, 0)
			// Takes skipped their wakes while this sender spun: wake
			// for the room they made unless this sender will take it.
			defer q.roomLeft()
		} else if got {
			return nil
		}
	}
	h.roomSleepers.Add(1)
	// A wake issued before this sleep was meant for an earlier sleeper
	// state: clear the mark so that the next take wakes again. (Clearing
	// only on return lost wakes: a sender woken, then counted, then
	// clearing, let a take set the mark with a wake that reached nobody,
	// and its next sleep was never woken.)
	h.roomWoken.Store(0)
	q.ws.Enter(OpSend, q.object, -1, !deadline.IsZero())
	hook(hookRoomSleep)
	var err error
	for {
		until := time.Now().Add(roomCheck)
		if !deadline.IsZero() && deadline.Before(until) {
			until = deadline
		}
		err = q.spin.sleep(q.roomWord(), seen, until)
		if err != ErrTimeout || !deadline.IsZero() && !time.Now().Before(deadline) {
			break
		}
		// The periodic check: a wake may have gone to a sleeper that died,
		// or a spinner died while takes skipped their wakes.
		h.roomWoken.Store(0)
		if s := h.roomSpinner.Load(); s != 0 && s != q.pid && ownerDead(s) {
			h.roomSpinner.CompareAndSwap(s, 0)
		}
		if h.room.Load() != seen {
			err = nil
			break
		}
	}
	q.ws.Leave()
	h.roomSleepers.Add(^uint32(0))
	h.roomWoken.Store(0)
	if err != nil && err != ErrTimeout {
		return fmt.Errorf("%s: futex wait: %w", q.name, err)
	}
	return err
}

// wakeRoom wakes a sender asleep for room, unless none sleeps or one was
// woken and has not run yet.
//
// The mark is set before room is bumped once more, and the wake follows:
// so every sender counted before the mark was set either is asleep in the
// kernel (the wake reaches one of them) or has yet to call FUTEX_WAIT with a
// value read before the bump (it returns at once). Either way one of them
// runs after the mark was set and clears it. Without the bump, a sender
// that had read room after this take's own bump (a third process refilled
// the queue in between), counted itself and cleared the mark, then was
// overtaken by this CAS, went to sleep on the current value: the wake had
// reached nobody, the mark stayed set, every later take skipped its wake,
// and the sender slept with room free until the periodic check (seen under
// load as "producer waits to send / consumer waits to receive").
//
// Above the low-water mark the wake is deferred (roomLow, owe).
//
// Every other way out covers what this view deferred before (settle):
// nobody sleeps, the mark's holder covers the room at its Send's end, a
// wake is on its way, or this wake goes out now.
func (q *Queue) wakeRoom() {
	h := q.h
	if h.roomSleepers.Load() == 0 || h.roomSpinner.Load() != 0 && h.perSender == 0 || h.roomWoken.Load() != 0 {
		q.settle()
		return
	}
	if !q.roomLow() {
		q.owe()
		return
	}
	q.settle()
	q.wakeRoomNow()
}

// wakeRoomNow is wakeRoom whatever the low-water mark: a deferred wake
// paid, Recover.
func (q *Queue) wakeRoomNow() {
	h := q.h
	if h.roomSleepers.Load() == 0 || h.roomSpinner.Load() != 0 && h.perSender == 0 ||
		h.roomWoken.Load() != 0 || !h.roomWoken.CompareAndSwap(0, 1) {
		return
	}
	h.room.Add(1)
	n := 1
	if h.perSender != 0 {
		n = math.MaxInt32
	}
	FutexWake(q.roomWord(), n)
}

// claimRoom makes a mailbox sender that may be about to wait for room,
// while others sleep for it, the holder of the spinner mark from the start
// of its Send (false when another holds it). Takes skip their wakes while
// the mark is held; the holder covers the room they made when its Send
// ends (releaseRoom).
func (q *Queue) claimRoom(capacity int) bool {
	h := q.h
	return spinning && h.perSender == 0 && capacity > 0 && h.roomSleepers.Load() != 0 &&
		h.roomSpinner.Load() == 0 && h.roomSpinner.CompareAndSwap(0, q.pid)
}

// releaseRoom ends a Send that holds the spinner mark: the mark is cleared
// and a sleeper woken if room is left (roomLeft).
func (q *Queue) releaseRoom(held *bool) {
	if *held {
		*held = false
		q.h.roomSpinner.CompareAndSwap(q.pid, 0)
	}
	q.roomLeft()
}

// roomLeft is wakeRoom for a mailbox sender that spun for room (or any
// sender, after its send): takes skip their wakes while a sender spins
// (wakeRoom), so whoever ends a spin wakes a sleeper when room is left.
// Either the take saw no spinner and woke, or this sender, which cleared
// the spinner mark before it looked, sees the room the take made.
func (q *Queue) roomLeft() {
	h := q.h
	if h.perSender != 0 || h.roomSleepers.Load() == 0 || h.roomSpinner.Load() != 0 {
		return
	}
	if q.roomFree() {
		q.wakeRoom()
	}
}
