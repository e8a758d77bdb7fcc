package ipc

import (
	"os"
	"strconv"
	"testing"
	"time"
)

func init() {
	registerChild("cond-turns", childCondTurns)
	registerChild("cond-wait", childCondWait)
	registerChild("cond-hold", childCondHold)
}

func newTestCond(tb testing.TB, name string) *Cond {
	tb.Helper()
	c, err := NewCond(name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// TestCondTurns: 4 processes take 300 turns each in strict rotation, each
// waiting on the condition variable until the shared turn counter names
// it (Mesa style: re-check in a loop) and broadcasting after its turn.
func TestCondTurns(t *testing.T) {
	const procs, rounds = 4, 300
	mu := newTestMutex(t, "m")
	c := newTestCond(t, "c")
	mem := newTestShm(t, "turn", 8+4*procs*rounds)
	var cs []*testChild
	for i := 0; i < procs; i++ {
		cs = append(cs, startChild(t, "cond-turns", []*os.File{mu.File(), c.File(), mem.File()},
			strconv.Itoa(i), strconv.Itoa(procs), strconv.Itoa(rounds)))
	}
	for _, ch := range cs {
		ch.wait(t)
	}
	if n := mustGet(t, mem, U32, 0); n != UintNumber(procs*rounds) {
		t.Fatalf("turns = %v, want %d", n, procs*rounds)
	}
	for k := 0; k < procs*rounds; k++ {
		if who := mustGet(t, mem, U32, 8+4*k); who != UintNumber(uint64(k%procs)) {
			t.Fatalf("turn %d taken by %v, want %d", k, who, k%procs)
		}
	}
	if c.Waiting() != 0 || mu.Holder() != 0 {
		t.Fatalf("after: %d waiting, holder %d", c.Waiting(), mu.Holder())
	}
}

func childCondTurns() {
	mu, err1 := OpenMutex(childFile(0), "m")
	c, err2 := OpenCond(childFile(1), "c")
	mem, err3 := OpenShm(childFile(2), "turn")
	if err1 != nil || err2 != nil || err3 != nil {
		childFatalf("%v %v %v", err1, err2, err3)
	}
	a := childArgs()
	me, _ := strconv.Atoi(a[0])
	procs, _ := strconv.Atoi(a[1])
	rounds, _ := strconv.Atoi(a[2])
	for r := 0; r < rounds; r++ {
		if _, err := mu.Lock(WaitOpts{Timeout: 60 * time.Second}); err != nil {
			childFatalf("lock: %v", err)
		}
		for {
			k, _ := mustChildGet(mem, 0).Int64()
			if int(k)%procs == me {
				break
			}
			if _, err := c.Wait(mu, WaitOpts{Timeout: 60 * time.Second}); err != nil {
				childFatalf("wait: %v", err)
			}
		}
		k, _ := mustChildGet(mem, 0).Int64()
		mem.Set(U32, 8+4*int(k), IntNumber(int64(me)))
		mem.Set(U32, 0, IntNumber(k+1))
		c.Broadcast()
		if err := mu.Unlock(); err != nil {
			childFatalf("unlock: %v", err)
		}
	}
}

func mustChildGet(m *Shm, off int) Number {
	v, err := m.Get(U32, off)
	if err != nil {
		childFatalf("%v", err)
	}
	return v
}

// childCondWait locks the mutex, posts "ready" (arg 0 says which
// semaphore index), waits on the condition once without a deadline, and
// records what the wait returned in the shm at 4*index: 1 woken, 2 woken
// and told the mutex owner died.
func childCondWait() {
	mu, err1 := OpenMutex(childFile(0), "m")
	c, err2 := OpenCond(childFile(1), "c")
	ready, err3 := OpenSemaphore(childFile(2), "ready")
	mem, err4 := OpenShm(childFile(3), "out")
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		childFatalf("%v %v %v %v", err1, err2, err3, err4)
	}
	idx, _ := strconv.Atoi(childArgs()[0])
	if _, err := mu.Lock(WaitOpts{}); err != nil {
		childFatalf("lock: %v", err)
	}
	ready.Post(1) // posted while holding the mutex: the parent's Lock then means we are in Wait
	died, err := c.Wait(mu, WaitOpts{})
	if err != nil {
		childFatalf("wait: %v", err)
	}
	v := int64(1)
	if died {
		v = 2
	}
	mem.Set(U32, 4*idx, IntNumber(v))
	mu.Unlock()
}

// childCondHold locks the mutex, posts "ready" and sleeps until killed.
func childCondHold() {
	mu, err1 := OpenMutex(childFile(0), "m")
	ready, err2 := OpenSemaphore(childFile(1), "ready")
	if err1 != nil || err2 != nil {
		childFatalf("%v %v", err1, err2)
	}
	if _, err := mu.Lock(WaitOpts{}); err != nil {
		childFatalf("lock: %v", err)
	}
	ready.Post(1)
	time.Sleep(time.Hour)
}

// startCondWaiter starts a childCondWait and returns once it sleeps in
// the condition variable.
func startCondWaiter(t *testing.T, mu *Mutex, c *Cond, ready *Semaphore, out *Shm, idx int) *testChild {
	t.Helper()
	before := c.Waiting()
	ch := startChild(t, "cond-wait", []*os.File{mu.File(), c.File(), ready.File(), out.File()}, strconv.Itoa(idx))
	if err := ready.Wait(WaitOpts{Timeout: 30 * time.Second}); err != nil {
		t.Fatalf("waiter %d not ready: %v\n%s", idx, err, ch.out.String())
	}
	waitFor(t, "the waiter to sleep", func() bool { return c.Waiting() == before+1 })
	return ch
}

func TestCondSignalOrderAndTimeout(t *testing.T) {
	mu := newTestMutex(t, "m")
	c := newTestCond(t, "c")
	ready := newTestSemaphore(t, "ready", 0)
	out := newTestShm(t, "out", 16)

	// Nobody waits: signal and broadcast do nothing.
	if err := c.Signal(); err != nil {
		t.Fatal(err)
	}
	c.Broadcast()

	// Wait needs the mutex held; a timed-out wait holds it again.
	wantErr(t, func() error { _, err := c.Wait(mu, WaitOpts{}); return err }(), `cond "c": wait: the mutex "m" must be held`)
	mu.Lock(WaitOpts{})
	if _, err := c.Wait(mu, WaitOpts{Timeout: 30 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("wait with timeout: %v, want ErrTimeout", err)
	}
	if mu.Holder() != os.Getpid() || c.Waiting() != 0 {
		t.Fatalf("after the timeout: holder %d, waiting %d", mu.Holder(), c.Waiting())
	}
	mu.Unlock()

	// Signal wakes the oldest waiter first.
	a := startCondWaiter(t, mu, c, ready, out, 0)
	b := startCondWaiter(t, mu, c, ready, out, 1)
	c.Signal()
	a.wait(t)
	if got := mustGet(t, out, U32, 4); got != UintNumber(0) {
		t.Fatalf("the second waiter woke on the first signal")
	}
	c.Signal()
	b.wait(t)
	if mustGet(t, out, U32, 0) != UintNumber(1) || mustGet(t, out, U32, 4) != UintNumber(1) {
		t.Fatalf("waiters reported %v %v, want 1 1", mustGet(t, out, U32, 0), mustGet(t, out, U32, 4))
	}
}

// TestCondWaiterKilled: a waiter killed in its sleep is forgotten, and a
// signal it had been given goes to the next waiter.
func TestCondWaiterKilled(t *testing.T) {
	mu := newTestMutex(t, "m")
	c := newTestCond(t, "c")
	ready := newTestSemaphore(t, "ready", 0)
	out := newTestShm(t, "out", 16)
	a := startCondWaiter(t, mu, c, ready, out, 0)
	b := startCondWaiter(t, mu, c, ready, out, 1)
	a.kill()
	c.Signal() // goes to the dead a
	c.Recover(a.Process.Pid)
	b.wait(t) // passed on to b
	if mustGet(t, out, U32, 4) != UintNumber(1) || c.Waiting() != 0 {
		t.Fatalf("b reported %v, waiting %d", mustGet(t, out, U32, 4), c.Waiting())
	}
	if mu.Holder() != 0 {
		t.Fatalf("mutex held by %d", mu.Holder())
	}
	// A killed waiter that was never signalled is just forgotten.
	d := startCondWaiter(t, mu, c, ready, out, 2)
	d.kill()
	c.Recover(d.Process.Pid)
	if c.Waiting() != 0 {
		t.Fatalf("waiting %d after the dead waiter was recovered", c.Waiting())
	}
}

// TestCondMutexHolderKilled: the mutex holder dies while a waiter sleeps;
// the waiter, signalled, gets the mutex and is told its owner died.
func TestCondMutexHolderKilled(t *testing.T) {
	mu := newTestMutex(t, "m")
	c := newTestCond(t, "c")
	ready := newTestSemaphore(t, "ready", 0)
	out := newTestShm(t, "out", 16)
	w := startCondWaiter(t, mu, c, ready, out, 0)
	h := startChild(t, "cond-hold", []*os.File{mu.File(), ready.File()})
	if err := ready.Wait(WaitOpts{Timeout: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	c.Signal()
	waitFor(t, "the waiter to queue for the mutex", func() bool { return mu.wl.queued() == 1 })
	h.kill()
	mu.Recover(h.Process.Pid)
	w.wait(t)
	if got := mustGet(t, out, U32, 0); got != UintNumber(2) {
		t.Fatalf("waiter reported %v, want 2 (woken, owner died)", got)
	}
}

// TestSemaphoreSleeperKilled: a unit handed to a sleeper that was killed
// goes back to the semaphore.
func TestSemaphoreSleeperKilled(t *testing.T) {
	s := newTestSemaphore(t, "s", 0)
	ch := startChild(t, "sem-wait-forever", []*os.File{s.File()})
	waitFor(t, "the child to sleep", func() bool { return s.wl.queued() == 1 })
	ch.kill()
	s.Post(1) // handed to the dead sleeper
	s.Recover(ch.Process.Pid)
	if s.Value() != 1 || s.wl.queued() != 0 {
		t.Fatalf("value %d queued %d, want 1 0", s.Value(), s.wl.queued())
	}
	if err := s.TryWait(); err != nil {
		t.Fatal(err)
	}
}

func init() {
	registerChild("sem-wait-forever", func() {
		s, err := OpenSemaphore(childFile(0), "s")
		if err != nil {
			childFatalf("%v", err)
		}
		s.Wait(WaitOpts{})
		time.Sleep(time.Hour)
	})
}
