package ipc

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestQueueReusesRingStart keeps a capacity-64 queue full (it never
// empties, so the rewind of an emptied queue never happens) and checks
// that sends go back to the ring's start once the live records leave room
// there: the ring's resident pages stay near rewindAt, not the ring's size.
func TestQueueReusesRingStart(t *testing.T) {
	q := newTestQueue(t, QueueConfig{Capacity: 64, Bytes: 16 << 20})
	body := make([]byte, 1000)
	var m Message
	for i := range 64 {
		mustSend(t, q, &Message{Seq: uint64(i), Body: body})
	}
	maxOff := uint64(0)
	for i := 64; i < 20000; i++ {
		if err := q.Receive(Filter{}, nb, &m); err != nil {
			t.Fatal(err)
		}
		if m.Seq != uint64(i-64) {
			t.Fatalf("got seq %d, want %d", m.Seq, i-64)
		}
		mustSend(t, q, &Message{Seq: uint64(i), Body: body})
		if q.Len() != 64 {
			t.Fatalf("%d queued, want 64", q.Len())
		}
		maxOff = max(maxOff, q.h.tail.Load()%q.size)
	}
	if maxOff > rewindAt+2048 {
		t.Fatalf("tail reached ring offset %d: the ring's start was not reused", maxOff)
	}
	if laps := q.h.tail.Load() / q.size; laps < 10 {
		t.Fatalf("only %d laps of the ring for 20000 messages", laps)
	}
	if live := checkQueue(t, q); len(live) != 64 {
		t.Fatalf("%d live, want 64", len(live))
	}
}

// TestQueueReuseKeepsLiveRecords: a message left queued near the ring's
// start (unmatched by selective receives) must stop the early wrap, not be
// overwritten by it.
func TestQueueReuseKeepsLiveRecords(t *testing.T) {
	q := newTestQueue(t, QueueConfig{Capacity: Unbounded, Bytes: 1 << 20})
	mustSend(t, q, &Message{Type: "keep", Seq: 1, Body: []byte("kept")})
	body := make([]byte, 3000)
	var m Message
	for i := 0; i < 5000; i++ {
		err := q.Send(&Message{Type: "x", Body: body}, nb)
		if err == ErrFull {
			break // the kept record pins the ring: sends run out of bytes
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Receive(Filter{ByType: true, Type: "x"}, nb, &m); err != nil {
			t.Fatal(err)
		}
	}
	m = mustReceive(t, q, Filter{ByType: true, Type: "keep"})
	if string(m.Body) != "kept" || m.Seq != 1 {
		t.Fatalf("kept message came back as %q seq %d", m.Body, m.Seq)
	}
	checkQueue(t, q)
}

// TestQueueFanIn: many senders blocked for room on one small queue, one
// receiver. Each take wakes one sleeping sender; none may be left asleep
// while there is room (the receive timeouts would fire).
func TestQueueFanIn(t *testing.T) {
	for _, capacity := range []int{1, 4} {
		t.Run(strconv.Itoa(capacity), func(t *testing.T) {
			const senders, per = 12, 400
			q := newTestQueue(t, QueueConfig{Capacity: capacity})
			fanIn(t, q, senders, per, 20*time.Second)
			if n := q.h.roomSleepers.Load(); n != 0 {
				t.Fatalf("%d senders still counted asleep", n)
			}
		})
	}
}

// TestQueueNoMissedRoomWakes: one producer faster than one consumer on a
// small queue, so the producer sleeps for room over and over. Every such
// sleep must be ended by a take's wake: the periodic check is pushed out of
// reach, so a lost wake shows as a send that times out. (A take's wake
// delayed by a busy machine is no loss: it still comes.)
func TestQueueNoMissedRoomWakes(t *testing.T) {
	defer func(d time.Duration) { roomCheck = d }(roomCheck)
	roomCheck = 10 * time.Minute
	q := newTestQueue(t, QueueConfig{Capacity: 2})
	p, c := openView(t, q), openView(t, q)
	const n = 30000
	done := make(chan error, 1)
	go func() {
		var m Message
		for i := range n {
			if err := c.Receive(Filter{}, WaitOpts{Timeout: 2 * time.Minute}, &m); err != nil {
				done <- err
				return
			}
			if m.Seq != uint64(i) {
				done <- fmt.Errorf("got seq %d, want %d", m.Seq, i)
				return
			}
		}
		done <- nil
	}()
	for i := range n {
		if err := p.Send(&Message{Seq: uint64(i), Body: []byte("x")}, WaitOpts{Timeout: 2 * time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestQueueRoomTimeout: a sender that gives up waiting for room leaves no
// trace that would keep the next one asleep.
func TestQueueRoomTimeout(t *testing.T) {
	q := newTestQueue(t, QueueConfig{Capacity: 1})
	mustSend(t, q, &Message{Body: []byte("1")})
	if err := q.Send(&Message{Body: []byte("2")}, WaitOpts{Timeout: 5 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("send to a full queue: %v, want ErrTimeout", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- q.Send(&Message{Body: []byte("3")}, WaitOpts{Timeout: 20 * time.Second}) }()
	for q.h.roomWaiting.Load() == 0 {
		time.Sleep(100 * time.Microsecond)
	}
	if m := mustReceive(t, q, Filter{}); string(m.Body) != "1" {
		t.Fatalf("got %q, want 1", m.Body)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if m := mustReceive(t, q, Filter{}); string(m.Body) != "3" {
		t.Fatalf("got %q, want 3", m.Body)
	}
	if q.h.roomWaiting.Load() != 0 || q.h.roomSleepers.Load() != 0 {
		t.Fatalf("room waiters left counted: %d waiting, %d asleep", q.h.roomWaiting.Load(), q.h.roomSleepers.Load())
	}
}

// TestSpinReprobe: a budget that fell to spinMin comes back by itself when
// the peer answers within spinMax again, without needing a short futex
// sleep: every spinReprobe-th wait spins for spinMax whatever the budget,
// and a success there raises the budget at once. The spinner's decisions
// are checked with given durations, not measured ones, so a loaded machine
// cannot change the outcome.
func TestSpinReprobe(t *testing.T) {
	var sp spinner
	sp.budget.Store(int64(spinMin))
	var long []int
	for w := 1; w <= 4*spinReprobe; w++ {
		budget, limit := sp.plan()
		if budget != int64(spinMin) {
			t.Fatalf("wait %d: budget %v, want %v", w, time.Duration(budget), spinMin)
		}
		switch limit {
		case spinMax:
			long = append(long, w)
		case spinMin:
		default:
			t.Fatalf("wait %d: limit %v, want %v or %v", w, limit, spinMin, spinMax)
		}
		sp.lost(budget) // the peer answers after 4 µs: longer than spinMin
	}
	if want := []int{spinReprobe, 2 * spinReprobe, 3 * spinReprobe, 4 * spinReprobe}; fmt.Sprint(long) != fmt.Sprint(want) {
		t.Fatalf("waits allowed spinMax: %v, want %v", long, want)
	}
	// The next re-probe catches the peer after 4 µs: the budget is back.
	for {
		budget, limit := sp.plan()
		if limit == spinMax {
			sp.won(budget, 4*time.Microsecond)
			break
		}
		sp.lost(budget)
	}
	if b := time.Duration(sp.budget.Load()); b != 8*time.Microsecond {
		t.Fatalf("budget after a re-probe that waited 4µs: %v, want 8µs", b)
	}
	if _, limit := sp.plan(); limit != 8*time.Microsecond {
		t.Fatalf("the next wait may spin %v, want 8µs", limit)
	}
	// Growth stops at spinMax; giving up halves, down to spinMin.
	sp.won(int64(8*time.Microsecond), 15*time.Microsecond)
	if b := time.Duration(sp.budget.Load()); b != spinMax {
		t.Fatalf("budget %v, want spinMax %v", b, spinMax)
	}
	for range 10 {
		sp.lost(sp.budget.Load())
	}
	if b := time.Duration(sp.budget.Load()); b != spinMin {
		t.Fatalf("budget %v after giving up 10 times, want spinMin %v", b, spinMin)
	}
}

// TestQueueRoomWakeNotLost plays, step by step, the interleaving that lost
// a room wake: a take makes room (its wakeRoom not yet called), another
// sender fills it again, a third sender reads room after the take, finds
// the queue full, counts itself asleep and clears the wake mark; only then
// does the take's wakeRoom run (its wake reaches nobody: the sender is not
// in FUTEX_WAIT yet), and then the sender sleeps. The next take must still
// wake it. With the periodic check out of reach, a lost wake leaves the
// sender asleep with room free.
func TestQueueRoomWakeNotLost(t *testing.T) {
	defer func(d time.Duration) { roomCheck = d }(roomCheck)
	roomCheck = 10 * time.Minute
	q := newTestQueue(t, QueueConfig{Capacity: 1})
	cons, fill, sleeper := openView(t, q), openView(t, q), openView(t, q)
	mustSend(t, q, &Message{Seq: 0})

	var wakeArmed, sleepArmed atomic.Bool
	wakeAt, wakeGo := make(chan struct{}), make(chan struct{})
	sleepAt, sleepGo := make(chan struct{}), make(chan struct{})
	testHook = func(p hookPoint) {
		switch {
		case p == hookRoomWake && wakeArmed.CompareAndSwap(true, false):
			wakeAt <- struct{}{}
			<-wakeGo
		case p == hookRoomSleep && sleepArmed.CompareAndSwap(true, false):
			sleepAt <- struct{}{}
			<-sleepGo
		}
	}
	defer func() { testHook = nil }()

	// 1. A take of message 0 stops before its wakeRoom.
	wakeArmed.Store(true)
	took := make(chan Message, 1)
	go func() {
		var m Message
		if err := cons.Receive(Filter{}, nb, &m); err != nil {
			t.Error(err)
		}
		took <- m
	}()
	<-wakeAt
	// 2. Another sender fills the room.
	if err := fill.Send(&Message{Seq: 1}, nb); err != nil {
		t.Fatalf("refill: %v", err)
	}
	// 3. A third sender finds the queue full and stops counted asleep.
	sleepArmed.Store(true)
	sent := make(chan error, 1)
	go func() { sent <- sleeper.Send(&Message{Seq: 2}, WaitOpts{Timeout: 10 * time.Minute}) }()
	<-sleepAt
	// 4. The take's wakeRoom runs now; 5. the sender goes on to sleep.
	close(wakeGo)
	if m := <-took; m.Seq != 0 {
		t.Fatalf("took seq %d, want 0", m.Seq)
	}
	close(sleepGo)
	waitInFutex(t, sleeper.roomWord())
	// 6. The next take makes room again: its wake must reach the sender.
	var m Message
	if err := cons.Receive(Filter{}, WaitOpts{Timeout: 10 * time.Minute}, &m); err != nil || m.Seq != 1 {
		t.Fatalf("second take: seq %d, %v", m.Seq, err)
	}
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // a liveness guard, far beyond any delay
		t.Fatalf("the sender still sleeps with room free: the room wake was lost (room %d, woken mark %d, %d asleep)",
			q.h.room.Load(), q.h.roomWoken.Load(), q.h.roomSleepers.Load())
	}
	if err := cons.Receive(Filter{}, nb, &m); err != nil || m.Seq != 2 {
		t.Fatalf("third take: seq %d, %v", m.Seq, err)
	}
}

// waitInFutex waits until a thread of this process sleeps in FUTEX_WAIT on
// addr (as /proc/self/task/*/syscall shows it): a step of a test that must
// come after a sleep has begun, not merely after the sleeper was let go.
func waitInFutex(t *testing.T, addr *uint32) {
	t.Helper()
	want := fmt.Sprintf("%d %#x ", unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)))
	waitFor(t, "a thread asleep on the futex", func() bool {
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, e := range tasks {
			b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/syscall")
			if err == nil && strings.HasPrefix(string(b), want) {
				return true
			}
		}
		return false
	})
}

// TestQueueRoomSpinner: while a sender spins for room in a mailbox, a take
// wakes no sleeper (the spinner takes the room); whoever ends the spin
// wakes one if room is left (roomLeft), and so does Recover when the
// spinner died. The spinner is played by setting its mark, so nothing
// depends on timing; the periodic check is out of reach.
func TestQueueRoomSpinner(t *testing.T) {
	defer func(d time.Duration) { roomCheck = d }(roomCheck)
	roomCheck = 10 * time.Minute
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	q := newTestQueue(t, QueueConfig{Capacity: 1})
	mustSend(t, q, &Message{Body: []byte("1")})
	for i, c := range []struct {
		spinner uint32
		end     func()
	}{
		{uint32(os.Getpid()), func() { q.h.roomSpinner.Store(0); q.roomLeft() }}, // the spin ended
		{uint32(dead.Process.Pid), func() { q.Recover(dead.Process.Pid) }},       // the spinner died
	} {
		q.h.roomSpinner.Store(c.spinner)
		errc := make(chan error, 1)
		body := strconv.Itoa(i + 2)
		go func() { errc <- q.Send(&Message{Body: []byte(body)}, WaitOpts{Timeout: 2 * time.Minute}) }()
		waitFor(t, "the sender to sleep for room", func() bool { return q.h.roomSleepers.Load() == 1 })
		if m := mustReceive(t, q, Filter{}); string(m.Body) != strconv.Itoa(i+1) {
			t.Fatalf("got %q, want %d", m.Body, i+1)
		}
		if q.h.roomWoken.Load() != 0 || q.h.roomSleepers.Load() != 1 {
			t.Fatalf("case %d: a take woke a sleeper while a sender spun (woken %d, asleep %d)", i, q.h.roomWoken.Load(), q.h.roomSleepers.Load())
		}
		c.end()
		if err := <-errc; err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if q.h.roomSpinner.Load() != 0 {
			t.Fatalf("case %d: spinner mark left: %d", i, q.h.roomSpinner.Load())
		}
	}
	if m := mustReceive(t, q, Filter{}); string(m.Body) != "3" {
		t.Fatalf("got %q, want 3", m.Body)
	}
}

// TestQueueRoomMarkHeldThroughSend: a mailbox sender that starts a Send
// while others sleep for room holds the spinner mark until its Send ends,
// so the takes made meanwhile wake nobody (it takes the room itself), and
// its Send's end wakes a sleeper when room is left. With the mark held
// only while spinning, a take during the sender's send woke a sleeper that
// then found the queue refilled and slept again: a futex wake and two
// context switches for nothing, about once per 25 messages with 16
// producers on one consumer. The sender is stopped at hooks, so nothing
// depends on timing; the periodic check is out of reach.
func TestQueueRoomMarkHeldThroughSend(t *testing.T) {
	defer func(d time.Duration) { roomCheck = d }(roomCheck)
	roomCheck = 10 * time.Minute
	q := newTestQueue(t, QueueConfig{Capacity: 2})
	cons, holder, sleeper := openView(t, q), openView(t, q), openView(t, q)
	mustSend(t, q, &Message{Seq: 0})
	mustSend(t, q, &Message{Seq: 1})

	if !spinning {
		t.Skip("one CPU: no sender spins or holds the mark")
	}
	// The hook is set before any sender runs (it reads it unlocked).
	var claimArmed, sentArmed atomic.Bool
	claimAt, claimGo := make(chan struct{}), make(chan struct{})
	sentAt, sentGo := make(chan struct{}), make(chan struct{})
	testHook = func(p hookPoint) {
		switch {
		case p == hookRoomClaimed && claimArmed.CompareAndSwap(true, false):
			claimAt <- struct{}{}
			<-claimGo
		case p == hookRoomSent && sentArmed.CompareAndSwap(true, false):
			sentAt <- struct{}{}
			<-sentGo
		}
	}
	slept := make(chan error, 1)
	defer func() {
		q.Shutdown() // a failed test's sleeper returns at once
		<-slept      // the sleeper has returned: nothing reads the hook any more
		testHook = nil
	}()

	// A sender asleep for room.
	go func() { slept <- sleeper.Send(&Message{Seq: 9}, WaitOpts{Timeout: 10 * time.Minute}) }()
	waitFor(t, "the sender to sleep for room", func() bool { return q.h.roomSleepers.Load() == 1 })

	claimArmed.Store(true)
	sentArmed.Store(true)
	sent := make(chan error, 1)
	go func() { sent <- holder.Send(&Message{Seq: 2}, WaitOpts{Timeout: 10 * time.Minute}) }()
	select {
	case <-claimAt:
	case <-time.After(time.Minute): // a liveness guard
		t.Fatalf("a Send started while a sender slept for room did not claim the spinner mark (spinner %d)", q.h.roomSpinner.Load())
	}
	noWake := func(when string) {
		t.Helper()
		if q.h.roomWoken.Load() != 0 || q.h.roomSleepers.Load() != 1 || q.h.roomSpinner.Load() == 0 {
			t.Fatalf("%s: woken mark %d, %d asleep, spinner %d: a take woke a sleeper while a sender held the mark",
				when, q.h.roomWoken.Load(), q.h.roomSleepers.Load(), q.h.roomSpinner.Load())
		}
	}
	// 1. A take before the holder has looked at the queue.
	var m Message
	if err := cons.Receive(Filter{}, nb, &m); err != nil || m.Seq != 0 {
		t.Fatalf("take 1: seq %d, %v", m.Seq, err)
	}
	noWake("a take before the holder locked")
	close(claimGo)
	// 2. The holder sent (into the room take 1 made) and stops before its
	// Send ends; another take.
	<-sentAt
	if err := cons.Receive(Filter{}, nb, &m); err != nil || m.Seq != 1 {
		t.Fatalf("take 2: seq %d, %v", m.Seq, err)
	}
	noWake("a take while the holder sent")
	// 3. The holder's Send ends with room left: the sleeper must be woken.
	close(sentGo)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-slept:
		slept <- err // for the deferred reset
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // a liveness guard, far beyond any delay
		t.Fatalf("the sleeper still sleeps with room free: the holder's Send ended without a wake (room %d, woken mark %d, %d asleep, spinner %d)",
			q.h.room.Load(), q.h.roomWoken.Load(), q.h.roomSleepers.Load(), q.h.roomSpinner.Load())
	}
	if s := q.h.roomSpinner.Load(); s != 0 {
		t.Fatalf("spinner mark left: %d", s)
	}
	for _, want := range []uint64{2, 9} {
		if err := cons.Receive(Filter{}, nb, &m); err != nil || m.Seq != want {
			t.Fatalf("got seq %d (%v), want %d", m.Seq, err, want)
		}
	}
}

// A sender asleep for room is played in the two tests below by counting
// one in roomSleepers, and a wake is seen as roomWoken set (wakeRoomNow
// sets it before its FUTEX_WAKE): a real sender's futex sleep also ends
// by itself (a signal: EINTR), and then a take that woke nobody looked as
// if it had. (TestQueueFanInBatched runs real sleepers.)
func playRoomSleeper(t *testing.T, q *Queue) {
	q.h.roomSleepers.Store(1)
	q.h.roomWoken.Store(0)
	t.Cleanup(func() { q.h.roomSleepers.Store(0) })
}

// TestQueueRoomWakeAtLowWater: in a mailbox of roomBatchMin or more, a take
// that leaves more than a quarter of the capacity queued wakes no sender
// asleep for room (it defers the wake: owed); the take that brings the
// queue down to the quarter wakes one, and drops the wake it deferred (its
// timer stopped). The deferred wake's timer is out of reach.
func TestQueueRoomWakeAtLowWater(t *testing.T) {
	defer func(e time.Duration) { roomDebtDelay = e }(roomDebtDelay)
	roomDebtDelay = 10 * time.Minute
	const capacity = 16
	q := newTestQueue(t, QueueConfig{Capacity: capacity})
	cons := openView(t, q)
	for i := range capacity {
		mustSend(t, q, &Message{Seq: uint64(i)})
	}
	playRoomSleeper(t, q)
	var m Message
	for i := 0; q.Len() > capacity/4; i++ {
		if err := cons.Receive(Filter{}, nb, &m); err != nil || m.Seq != uint64(i) {
			t.Fatalf("take %d: seq %d, %v", i, m.Seq, err)
		}
		if q.Len() > capacity/4 && (q.h.roomWoken.Load() != 0 || !cons.debt.due.Load()) {
			t.Fatalf("take %d left %d queued: woken mark %d, debt owed %v: want no wake, the wake owed",
				i, q.Len(), q.h.roomWoken.Load(), cons.debt.due.Load())
		}
	}
	if q.h.roomWoken.Load() != 1 {
		t.Fatalf("the take that left %d of %d queued woke nobody", q.Len(), capacity)
	}
	if cons.debt.due.Load() {
		t.Fatal("the take that woke the sender still owes its deferred wake: its timer would wake this process for nothing")
	}
}

// TestQueueRoomDebtPaid plays a deferred room wake to its end: a take
// leaves the mailbox above its low-water mark, so it wakes nobody, and
// then the taker takes nothing more. The sender asleep for room must still
// be woken: by the taker's timer (stopped at a hook until the test has
// seen that nothing woke the sender before it), by the taker's next wait
// to receive, or by its Close.
func TestQueueRoomDebtPaid(t *testing.T) {
	defer func(e time.Duration) { roomDebtDelay = e }(roomDebtDelay)
	const capacity = 16
	for _, how := range []string{"timer", "wait", "close"} {
		t.Run(how, func(t *testing.T) {
			roomDebtDelay = 10 * time.Minute
			if how == "timer" {
				roomDebtDelay = 5 * time.Millisecond
			}
			q := newTestQueue(t, QueueConfig{Capacity: capacity})
			cons := openView(t, q)
			for i := range capacity {
				mustSend(t, q, &Message{Seq: uint64(i)})
			}
			var paidArmed atomic.Bool
			paidAt, paidGo := make(chan struct{}), make(chan struct{})
			testHook = func(p hookPoint) {
				if p == hookRoomDebtPaid && paidArmed.CompareAndSwap(true, false) {
					paidAt <- struct{}{}
					<-paidGo
				}
			}
			defer func() { testHook = nil }()
			playRoomSleeper(t, q)
			paidArmed.Store(true)
			var m Message
			if err := cons.Receive(Filter{}, nb, &m); err != nil || m.Seq != 0 {
				t.Fatalf("take: seq %d, %v", m.Seq, err)
			}
			if q.h.roomWoken.Load() != 0 || !cons.debt.due.Load() {
				t.Fatalf("after the take above the low-water mark: woken mark %d, debt owed %v: want no wake, the wake owed",
					q.h.roomWoken.Load(), cons.debt.due.Load())
			}
			switch how {
			case "timer":
				<-paidAt
				if q.h.roomWoken.Load() != 0 {
					t.Fatal("the sender was woken before the deferred wake's timer fired")
				}
				close(paidGo)
			case "wait":
				// A receive that waits (only for type "none": nothing
				// matches) pays first.
				err := cons.Receive(Filter{ByType: true, Type: "none"}, WaitOpts{Timeout: 50 * time.Millisecond}, &m)
				if err != ErrTimeout {
					t.Fatalf("receive of type none: %v, want ErrTimeout", err)
				}
			case "close":
				cons.Close()
			}
			waitFor(t, "the deferred wake", func() bool { return q.h.roomWoken.Load() == 1 })
			if cons.debt.due.Load() {
				t.Fatal("the wake is still owed after it was paid")
			}
		})
	}
}

// TestQueueFanInBatched: many senders on one mailbox large enough to batch
// its room wakes, one receiver, every timer out of reach (the deferred
// wakes' and the periodic check): the takes at the low-water mark and the
// receiver's waits alone must keep every sender going. Every message is
// taken once, in each sender's order.
func TestQueueFanInBatched(t *testing.T) {
	defer func(d, e time.Duration) { roomCheck, roomDebtDelay = d, e }(roomCheck, roomDebtDelay)
	roomCheck, roomDebtDelay = 10*time.Minute, 10*time.Minute
	const senders, per, capacity = 12, 2000, 16
	q := newTestQueue(t, QueueConfig{Capacity: capacity})
	fanIn(t, q, senders, per, 2*time.Minute)
}

// fanIn sends per messages from each of senders goroutines (sender s
// numbers its own from 0), each through its own view of q, to one
// receiver on another view, each wait bounded by timeout; then shuts q
// down and checks every message came once, each sender's in order.
func fanIn(t *testing.T, q *Queue, senders, per int, timeout time.Duration) {
	t.Helper()
	results := make([][]Message, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		v := openView(t, q)
		for {
			var m Message
			err := v.Receive(Filter{}, WaitOpts{Timeout: timeout}, &m)
			if err == ErrClosed {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			results[0] = append(results[0], m)
		}
	}()
	var wg sync.WaitGroup
	for s := range senders {
		v := openView(t, q)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				m := &Message{Src: int32(s), Seq: uint64(i), Body: []byte(strconv.Itoa(i))}
				if err := v.Send(m, WaitOpts{Timeout: timeout}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	q.Shutdown()
	<-done
	checkDelivery(t, results, senders, per)
}
