package ipc

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
	_ "unsafe" // go:linkname
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
	if recv {
		q.payDebtNow() // a receiver that waits owes no deferred room wake
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
