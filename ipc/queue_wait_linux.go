package ipc

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Waiting. A waiter reads Word, checks its condition, and waits for Word to
// change: first by spinning (a FUTEX_WAIT plus the wakeup costs ~10 µs; a
// busy peer usually answers sooner), then asleep on the futex. Sleepers
// count themselves first so that a waker, which bumps Word before reading
// the count, issues FUTEX_WAKE only when someone may sleep: with sequentially
// consistent atomics either the waker sees the count or the sleeper's
// FUTEX_WAIT sees the new Word and returns at once.

// The spin budget adapts per Queue (per process), between spinMin and
// spinMax: it doubles after a spin that saw the change, halves after one
// that gave up, and after a sleep that ended within spinMax (spinning would
// have caught it) it becomes twice that wait. Without that last rule a
// ping-pong whose turnaround exceeds the budget never spins successfully
// again. spinMax is about the cost of the sleep it saves (measured: 5 µs
// catches too little of a busy peer's turnaround, 50 µs wastes more CPU for
// no gain).
const (
	spinMin = 1 * time.Microsecond
	spinMax = 20 * time.Microsecond
)

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
	if q.spinWait(seen, start, deadline) {
		return nil
	}
	sleepers.Add(1)
	q.ws.Enter(op, q.object, peer, !deadline.IsZero())
	err := FutexWait(q.Word(), seen, deadline)
	q.ws.Leave()
	sleepers.Add(^uint32(0))
	if err == nil {
		if d := time.Since(start); d < spinMax {
			q.spin.Store(int64(max(2*d, spinMin)))
		}
	} else if err != ErrTimeout {
		return fmt.Errorf("%s: futex wait: %w", q.name, err)
	}
	return err
}

// spinWait spins until Word changes from seen (true) or the spin budget or
// the deadline runs out (false).
func (q *Queue) spinWait(seen uint32, start, deadline time.Time) bool {
	budget := q.spin.Load()
	end := start.Add(time.Duration(budget))
	if !deadline.IsZero() && deadline.Before(end) {
		end = deadline
	}
	for i := 1; ; i++ {
		if q.h.word.Load() != seen {
			if budget < int64(spinMax) {
				q.spin.Store(min(2*budget, int64(spinMax)))
			}
			return true
		}
		if i%32 == 0 && time.Now().After(end) {
			if budget > int64(spinMin) {
				q.spin.Store(max(budget/2, int64(spinMin)))
			}
			return false
		}
	}
}

// wake wakes everyone asleep on Word if sleepers says anyone may be.
// Everyone, because a woken receiver whose filter does not match would
// otherwise swallow the only wakeup.
func (q *Queue) wake(sleepers *atomic.Uint32) {
	if sleepers.Load() != 0 {
		FutexWake(q.Word(), math.MaxInt32)
	}
}

// monoNow is CLOCK_MONOTONIC in ns without a system call: the runtime's
// monotonic clock is CLOCK_MONOTONIC, read through the vDSO; one real
// clock_gettime at start gives the offset.
func monoNow() int64 { return monoBase + int64(time.Since(monoStart)) }

var monoBase, monoStart = func() (int64, time.Time) {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano(), time.Now()
}()
