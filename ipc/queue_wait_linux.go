package ipc

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
	"unsafe"
)

// Waiting. A waiter reads Word, checks its condition, and waits for Word to
// change: first by spinning (a FUTEX_WAIT plus the wakeup costs ~10 µs; a
// busy peer usually answers sooner), then asleep on the futex. Sleepers
// count themselves first so that a waker, which bumps Word before reading
// the count, issues FUTEX_WAKE only when someone may sleep: with sequentially
// consistent atomics either the waker sees the count or the sleeper's
// FUTEX_WAIT sees the new Word and returns at once.

// wait waits for Word to change from seen, until deadline (zero = forever).
// It returns nil when Word changed (or spuriously), ErrTimeout at the
// deadline.
func (q *Queue) wait(seen uint32, deadline time.Time, recv bool, peer int32) error {
	sleepers, op := &q.h.sendSleepers, OpSend
	if recv {
		q.h.recvWaiting.Add(1)
		defer q.h.recvWaiting.Add(^uint32(0))
		sleepers, op = &q.h.recvSleepers, OpReceive
	}
	start := time.Now()
	if q.spin.spin(func() bool { return q.h.word.Load() != seen }, start, deadline) {
		return nil
	}
	sleepers.Add(1)
	q.publishSleep(seen)
	q.ws.Enter(op, q.object, peer, !deadline.IsZero())
	err := q.spin.sleep(q.Word(), seen, deadline)
	q.ws.Leave()
	sleepers.Add(^uint32(0))
	if err != nil && err != ErrTimeout {
		return fmt.Errorf("%s: futex wait: %w", q.name, err)
	}
	return err
}

// wake wakes everyone asleep on Word if sleepers says anyone may be.
// Everyone, because a woken receiver whose filter does not match would
// otherwise swallow the only wakeup.
//
// A sleeper stays counted until it runs again, which takes a while after
// its wakeup: every operation in between would issue a FUTEX_WAKE that
// wakes nobody (measured: ~25 per sleep with a full capacity-64 mailbox).
// Those are skipped. A sleeper blocks only while Word equals the value it
// saw (seen), so it was enqueued in the kernel before Word moved past
// seen; a FUTEX_WAKE issued after Word reached v therefore woke every
// sleeper with seen < v. Sleepers publish the greatest seen (sleepSeen,
// before they sleep), wakers the v of their wake-all (wokeUpTo, after it):
// when sleepSeen < wokeUpTo, everyone who may be asleep has been woken.
// Selects sleep on values read after they registered, so while one is
// registered every wake is issued. Comparisons allow for Word wrapping; a
// value more than staleGap behind Word is stale, and a stale value never
// lets a wake be skipped.
func (q *Queue) wake(sleepers *atomic.Uint32) {
	if sleepers.Load() == 0 {
		return
	}
	h := q.h
	if h.selects.Load() == 0 {
		seen, woke, now := h.sleepSeen.Load(), h.wokeUpTo.Load(), h.word.Load()
		if int32(seen-woke) < 0 && now-woke < staleGap {
			return
		}
	}
	now := h.word.Load()
	FutexWake(q.Word(), math.MaxInt32)
	for {
		old := h.wokeUpTo.Load()
		if int32(now-old) <= 0 && h.word.Load()-old < staleGap {
			return // a later wake-all is already recorded
		}
		if h.wokeUpTo.CompareAndSwap(old, now) {
			return
		}
	}
}

// staleGap: see wake.
const staleGap = 1 << 30

// publishSleep records, before a sleep on Word with value seen, that a
// sleeper may wait on seen: sleepSeen becomes at least seen.
func (q *Queue) publishSleep(seen uint32) {
	h := q.h
	for {
		old := h.sleepSeen.Load()
		if int32(seen-old) <= 0 && h.word.Load()-old < staleGap {
			return
		}
		if h.sleepSeen.CompareAndSwap(old, seen) {
			return
		}
	}
}

// monoNow is CLOCK_MONOTONIC in ns without a system call: the runtime's
// nanotime, which on Linux is clock_gettime(CLOCK_MONOTONIC) through the
// vDSO (a linkname the runtime keeps for outside packages, go.dev/issue/67401).
// It is the same clock in every process of a run, read exactly: a message's
// time, stamped by the sender, and ipc.now() in the receiver compare. (It
// was one clock_gettime at start plus time.Since: the two start reads were
// apart by however long the process was preempted between them, so each
// process's clock ran behind by that much, and a message could be stamped
// before the ipc.now() its sender read just earlier; TestMessageTable saw
// it 13 times in 200 at load 12.)
func monoNow() int64 { return nanotime() }

//go:linkname nanotime runtime.nanotime
func nanotime() int64

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

// roomCheck is how often a sender asleep for room wakes by itself (a
// variable for tests).
var roomCheck = time.Second

func (q *Queue) roomWord() *uint32 { return (*uint32)(unsafe.Pointer(&q.h.room)) }

// waitRoom waits for room to change from seen, until deadline (zero =
// forever). It returns nil when room changed (or spuriously), ErrTimeout at
// the deadline.
func (q *Queue) waitRoom(seen uint32, deadline time.Time) error {
	h := q.h
	alone := h.roomWaiting.Add(1) == 1
	defer h.roomWaiting.Add(^uint32(0))
	start := time.Now()
	spinner := spinning && (h.perSender == 0 && h.roomSpinner.CompareAndSwap(0, q.pid) || h.perSender != 0 && alone)
	if spinner {
		got := q.spin.spin(func() bool { return h.room.Load() != seen }, start, deadline)
		if h.perSender == 0 {
			h.roomSpinner.CompareAndSwap(q.pid, 0)
			// Takes skipped their wakes while this sender spun: wake
			// for the room they made unless this sender will take it.
			defer func() {
				if !got {
					q.roomLeft()
				}
			}()
		}
		if got {
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
