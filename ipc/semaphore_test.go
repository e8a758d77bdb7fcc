package ipc

import (
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func init() {
	registerChild("kern-sem-gate", kernChildSemGate)
	registerChild("kern-sem-pong", kernChildSemPong)
}

func newTestSemaphore(tb testing.TB, name string, initial int) *Semaphore {
	tb.Helper()
	s, err := NewSemaphore(name, initial)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestSemaphoreBasics(t *testing.T) {
	s := newTestSemaphore(t, "slots", 2)
	if s.Value() != 2 {
		t.Fatalf("Value = %d", s.Value())
	}
	if err := s.TryWait(); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(WaitOpts{}); err != nil {
		t.Fatal(err)
	}
	if err := s.TryWait(); err != ErrEmpty {
		t.Fatalf("TryWait at 0 = %v, want ErrEmpty", err)
	}
	if err := s.Wait(WaitOpts{NonBlocking: true}); err != ErrEmpty {
		t.Fatalf("non-blocking Wait at 0 = %v, want ErrEmpty", err)
	}
	start := time.Now()
	if err := s.Wait(WaitOpts{Timeout: 30 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("Wait with timeout = %v, want ErrTimeout", err)
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Fatal("Wait timed out early")
	}
	if err := s.Post(3); err != nil || s.Value() != 3 {
		t.Fatalf("Post(3): %v, value %d", err, s.Value())
	}
	wantErr(t, s.Post(0), `semaphore "slots": post: count 0 must be at least 1`)
	wantErr(t, s.Post(SemMax), "would exceed the maximum")
	_, err := NewSemaphore("neg", -1)
	wantErr(t, err, `semaphore "neg": create: initial value -1 must be between 0`)
}

// TestSemaphoreNoLostWakeups: sleepers are woken by exactly the posts they
// need, whichever order things happen in.
func TestSemaphoreNoLostWakeups(t *testing.T) {
	s := newTestSemaphore(t, "s", 0)
	const waiters, rounds = 4, 500
	var wg sync.WaitGroup
	var got atomic.Int64
	for i := 0; i < waiters; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < rounds; j++ {
				if err := s.Wait(WaitOpts{Timeout: 20 * time.Second}); err != nil {
					t.Error(err)
					return
				}
				got.Add(1)
			}
		}()
	}
	for i := 0; i < waiters*rounds; i++ {
		if err := s.Post(1); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if got.Load() != waiters*rounds || s.Value() != 0 {
		t.Fatalf("took %d, value %d", got.Load(), s.Value())
	}
}

func TestSemaphoreStatusAndClose(t *testing.T) {
	st, err := NewStatusTable(1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Region.Close()
	ws := st.Slot(0)
	s, err := NewSemaphore("s", 0)
	if err != nil {
		t.Fatal(err)
	}
	s.SetStatus(ws, 7)
	done := make(chan error)
	go func() { done <- s.Wait(WaitOpts{}) }()
	waitFor(t, "the wait to be recorded", func() bool {
		return atomic.LoadUint32(&ws.State) == StateBlocked && atomic.LoadUint32(&ws.Op) == OpWait &&
			atomic.LoadInt32(&ws.Object) == 7
	})
	s.Post(1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if atomic.LoadUint32(&ws.State) != StateRunning || atomic.LoadUint64(&ws.Progress) != 2 {
		t.Fatalf("after the wait: state %d progress %d", ws.State, ws.Progress)
	}
	// Closing releases this process's sleepers with an error.
	go func() { done <- s.Wait(WaitOpts{}) }()
	waitFor(t, "the second wait", func() bool { return atomic.LoadUint32(&ws.State) == StateBlocked })
	s.Close()
	wantErr(t, <-done, `semaphore "s": wait: semaphore was closed while waiting`)
	wantErr(t, s.Post(1), `semaphore "s": post: semaphore is closed`)
}

// TestSemaphoreOfTwoNeverLetsThreeIn: 4 processes pass a semaphore of 2
// many times; a shared counter of holders never exceeds 2.
func TestSemaphoreOfTwoNeverLetsThreeIn(t *testing.T) {
	const procs, rounds = 4, 400
	s := newTestSemaphore(t, "gate", 2)
	m := newTestShm(t, "holders", 16) // 0: holders now, 4: most seen, 8: passes, 12: ready
	var cs []*testChild
	for i := 0; i < procs; i++ {
		cs = append(cs, startChild(t, "kern-sem-gate", []*os.File{s.File(), m.File()}, strconv.Itoa(rounds), strconv.Itoa(procs)))
	}
	for _, c := range cs {
		c.wait(t)
	}
	most := mustGet(t, m, I32, 4)
	if v, _ := most.Int64(); v > 2 || v < 1 {
		t.Fatalf("%v processes held a semaphore of 2 at once", most)
	}
	if v := mustGet(t, m, I32, 8); v != IntNumber(procs*rounds) {
		t.Fatalf("passes = %v, want %d", v, procs*rounds)
	}
	if s.Value() != 2 {
		t.Fatalf("value after = %d, want 2", s.Value())
	}
	t.Logf("at most %v holders at once", most)
}

func kernChildSemGate() {
	s, err := OpenSemaphore(childFile(0), "gate")
	if err != nil {
		childFatalf("%v", err)
	}
	m, err := OpenShm(childFile(1), "holders")
	if err != nil {
		childFatalf("%v", err)
	}
	rounds, _ := strconv.Atoi(childArgs()[0])
	procs, _ := strconv.Atoi(childArgs()[1])
	// Start together, so that the processes really contend.
	m.Add(I32, 12, IntNumber(1))
	for {
		if ready, _ := m.Get(I32, 12); mustInt(ready) >= int64(procs) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < rounds; i++ {
		if err := s.Wait(WaitOpts{Timeout: 30 * time.Second}); err != nil {
			childFatalf("wait: %v", err)
		}
		in, _ := m.Add(I32, 0, IntNumber(1))
		for {
			most, _ := m.Get(I32, 4)
			if mustInt(in) <= mustInt(most) {
				break
			}
			if ok, _ := m.CAS(I32, 4, most, in); ok {
				break
			}
		}
		m.Add(I32, 8, IntNumber(1))
		for j := 0; j < 2000; j++ { // stay inside a little
			m.Get(I32, 0)
		}
		m.Add(I32, 0, IntNumber(-1))
		if err := s.Post(1); err != nil {
			childFatalf("post: %v", err)
		}
	}
}

func mustInt(n Number) int64 {
	i, _ := n.Int64()
	return i
}

// TestSemaphoreAcrossProcesses: a child waits on ping and posts pong.
func TestSemaphoreAcrossProcesses(t *testing.T) {
	ping := newTestSemaphore(t, "ping", 0)
	pong := newTestSemaphore(t, "pong", 0)
	c := startChild(t, "kern-sem-pong", []*os.File{ping.File(), pong.File()}, "100")
	for i := 0; i < 100; i++ {
		ping.Post(1)
		if err := pong.Wait(WaitOpts{Timeout: 20 * time.Second}); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	c.wait(t)
}

func kernChildSemPong() {
	ping, err := OpenSemaphore(childFile(0), "ping")
	if err != nil {
		childFatalf("%v", err)
	}
	pong, err := OpenSemaphore(childFile(1), "pong")
	if err != nil {
		childFatalf("%v", err)
	}
	n, _ := strconv.Atoi(childArgs()[0])
	for i := 0; i < n; i++ {
		if err := ping.Wait(WaitOpts{Timeout: 30 * time.Second}); err != nil {
			childFatalf("round %d: %v", i, err)
		}
		pong.Post(1)
	}
}

// waitFor polls cond until it holds. It sets no deadline: on a busy
// machine a condition may take any time to come true, so a deadline would
// assert speed. A condition that never comes true is a hang, which go
// test's -timeout ends; the log says what was awaited. It may be called from
// any goroutine of the test.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for start, logged := time.Now(), false; !cond(); time.Sleep(time.Millisecond) {
		if !logged && time.Since(start) > 30*time.Second {
			tb.Logf("still waiting for %s", what)
			logged = true
		}
	}
}
