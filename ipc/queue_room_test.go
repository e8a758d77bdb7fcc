package ipc

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
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
			results := make([][]Message, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				v := openView(t, q)
				for {
					var m Message
					err := v.Receive(Filter{}, WaitOpts{Timeout: 20 * time.Second}, &m)
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
						if err := v.Send(m, WaitOpts{Timeout: 20 * time.Second}); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			q.Close()
			<-done
			checkDelivery(t, results, senders, per)
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
// the peer answers within spinMax again (every spinReprobe-th wait spins
// for spinMax), without needing a short futex sleep.
func TestSpinReprobe(t *testing.T) {
	if !spinning {
		t.Skip("one CPU allowed: no spinning")
	}
	var sp spinner
	sp.budget.Store(int64(spinMin))
	const answer = 4 * time.Microsecond // the peer's turnaround
	successes := 0
	for range 4 * spinReprobe {
		start := time.Now()
		if sp.spin(func() bool { return time.Since(start) > answer }, start, time.Time{}) {
			successes++
		}
	}
	if successes == 0 {
		t.Fatalf("no spin succeeded in %d waits: the budget stayed at %v", 4*spinReprobe, time.Duration(sp.budget.Load()))
	}
}
