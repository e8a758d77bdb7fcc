package ipc

import (
	"fmt"
	"math"
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
// A sleeper killed after a wake leaves roomWoken set; sleepers check the
// queue every roomCheck, clearing it, and Recover clears it too.

// Test hooks of the room protocol (hook, queue_lock_linux.go).
const (
	hookRoomClaimed hookPoint = iota + 100 // a Send claimed the spinner mark at its start, not yet locked
	hookRoomSent                           // a Send committed its record, its releaseRoom not yet called
)

// roomCheck is how often a sender asleep for room wakes by itself (a
// variable for tests).
var roomCheck = time.Second

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
func (q *Queue) wakeRoom() {
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
	if c := int(h.capacity); c <= 0 || int(h.count.Load()) < c {
		q.wakeRoom()
	}
}
