package ipc

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func init() {
	registerChild("kern-mutex-incr", kernChildMutexIncr)
	registerChild("kern-mutex-hold", kernChildMutexHold)
}

func newTestMutex(tb testing.TB, name string) *Mutex {
	tb.Helper()
	m, err := NewMutex(name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// TestMutexCountsAcrossProcesses: 4 processes × 5000 non-atomic increments
// (read 8 bytes, add, write back) under the mutex lose none.
func TestMutexCountsAcrossProcesses(t *testing.T) {
	const procs, n = 4, 5000
	mu := newTestMutex(t, "m")
	m := newTestShm(t, "counter", 8)
	var cs []*testChild
	for i := 0; i < procs; i++ {
		cs = append(cs, startChild(t, "kern-mutex-incr", []*os.File{mu.File(), m.File()}, strconv.Itoa(n)))
	}
	for _, c := range cs {
		c.wait(t)
	}
	if v := mustGet(t, m, I64, 0); v != IntNumber(procs*n) {
		t.Fatalf("counter = %v, want %d", v, procs*n)
	}
	if mu.Holder() != 0 {
		t.Fatalf("still held by %d", mu.Holder())
	}
}

func kernChildMutexIncr() {
	mu, err := OpenMutex(childFile(0), "m")
	if err != nil {
		childFatalf("%v", err)
	}
	m, err := OpenShm(childFile(1), "counter")
	if err != nil {
		childFatalf("%v", err)
	}
	n, _ := strconv.Atoi(childArgs()[0])
	for i := 0; i < n; i++ {
		died, err := mu.Lock(WaitOpts{Timeout: 30 * time.Second})
		if err != nil || died {
			childFatalf("lock: died=%v err=%v", died, err)
		}
		b, _ := m.Read(0, 8)
		binary.NativeEndian.PutUint64(b, binary.NativeEndian.Uint64(b)+1)
		m.Write(0, b)
		if err := mu.Unlock(); err != nil {
			childFatalf("unlock: %v", err)
		}
	}
}

// kernChildMutexHold locks the mutex, posts the semaphore and sleeps until
// it is killed.
func kernChildMutexHold() {
	mu, err := OpenMutex(childFile(0), "m")
	if err != nil {
		childFatalf("%v", err)
	}
	locked, err := OpenSemaphore(childFile(1), "locked")
	if err != nil {
		childFatalf("%v", err)
	}
	if _, err := mu.Lock(WaitOpts{}); err != nil {
		childFatalf("%v", err)
	}
	locked.Post(1)
	time.Sleep(time.Hour)
}

// TestMutexGoroutines: goroutines of one process exclude each other too.
func TestMutexGoroutines(t *testing.T) {
	mu := newTestMutex(t, "m")
	const gs, n = 4, 2000
	count := 0 // guarded by mu (the race detector checks it)
	var wg sync.WaitGroup
	for i := 0; i < gs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < n; j++ {
				if _, err := mu.Lock(WaitOpts{Timeout: 20 * time.Second}); err != nil {
					t.Error(err)
					return
				}
				count++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if count != gs*n {
		t.Fatalf("count = %d, want %d", count, gs*n)
	}
}

func TestMutexErrorsAndWaits(t *testing.T) {
	st, err := NewStatusTable(1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Region.Close()
	ws := st.Slot(0)
	mu := newTestMutex(t, "m")
	mu.SetStatus(ws, 3)
	wantErr(t, mu.Unlock(), `mutex "m": unlock: not held by any process`)
	if died, err := mu.Lock(WaitOpts{}); died || err != nil {
		t.Fatalf("lock: %v %v", died, err)
	}
	if mu.Holder() != os.Getpid() {
		t.Fatalf("Holder = %d, want %d", mu.Holder(), os.Getpid())
	}
	if _, err := mu.TryLock(); err != ErrEmpty {
		t.Fatalf("TryLock of a held mutex = %v, want ErrEmpty", err)
	}
	if _, err := mu.Lock(WaitOpts{Timeout: 20 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("Lock with timeout = %v, want ErrTimeout", err)
	}
	done := make(chan error)
	go func() {
		_, err := mu.Lock(WaitOpts{})
		done <- err
	}()
	waitFor(t, "the lock wait to be recorded", func() bool {
		return atomic.LoadUint32(&ws.State) == StateBlocked && atomic.LoadUint32(&ws.Op) == OpLock &&
			atomic.LoadInt32(&ws.Object) == 3 && atomic.LoadUint32(&ws.Deadline) == 0
	})
	mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Unlock()
	if atomic.LoadUint32(&ws.State) != StateRunning {
		t.Fatal("still recorded as blocked")
	}
}

// holdInChild starts a child that locks mu and returns once it holds it.
func holdInChild(t *testing.T, mu *Mutex) *testChild {
	locked := newTestSemaphore(t, "locked", 0)
	c := startChild(t, "kern-mutex-hold", []*os.File{mu.File(), locked.File()})
	if err := locked.Wait(WaitOpts{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("child did not lock: %v\n%s", err, c.out.String())
	}
	return c
}

// TestMutexHolderKilled: a holder killed with SIGKILL does not hang the
// next locker, which is told the owner died.
func TestMutexHolderKilled(t *testing.T) {
	mu := newTestMutex(t, "m")
	c := holdInChild(t, mu)
	pid := c.Process.Pid
	if mu.Holder() != pid {
		t.Fatalf("Holder = %d, want the child %d", mu.Holder(), pid)
	}
	wantErr(t, mu.Unlock(), fmt.Sprintf(`mutex "m": unlock: not held by this process (held by pid %d)`, pid))
	if _, err := mu.Lock(WaitOpts{Timeout: 100 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("Lock while a live child holds it = %v, want ErrTimeout", err)
	}
	type result struct {
		died bool
		err  error
	}
	done := make(chan result)
	go func() {
		died, err := mu.Lock(WaitOpts{Timeout: 20 * time.Second})
		done <- result{died, err}
	}()
	// Kill once the locker sleeps in the queue, so that the dead holder is
	// found by a sleeper.
	waitFor(t, "the locker to wait", func() bool { return mu.wl.queued() == 1 })
	c.kill()
	r := <-done
	if r.err != nil || !r.died {
		t.Fatalf("Lock after the holder died: died=%v err=%v", r.died, r.err)
	}
	if err := mu.Unlock(); err != nil {
		t.Fatal(err)
	}
	if died, err := mu.Lock(WaitOpts{}); died || err != nil {
		t.Fatalf("the next Lock: died=%v err=%v", died, err)
	}
	mu.Unlock()
}

// TestMutexHolderZombie: a dead holder not yet reaped (a zombie still
// answers kill(pid, 0)) is seen as dead too.
func TestMutexHolderZombie(t *testing.T) {
	mu := newTestMutex(t, "m")
	locked := newTestSemaphore(t, "locked", 0)
	cmd := childCommand("kern-mutex-hold", []*os.File{mu.File(), locked.File()})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if err := locked.Wait(WaitOpts{Timeout: 20 * time.Second}); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill() // not reaped until the deferred Wait
	died, err := mu.Lock(WaitOpts{Timeout: 20 * time.Second})
	if err != nil || !died {
		t.Fatalf("Lock after the holder died: died=%v err=%v", died, err)
	}
	mu.Unlock()
}

// TestMutexRecover: the supervisor's Recover releases a dead child's lock
// at once, and the next Lock reports the owner died.
func TestMutexRecover(t *testing.T) {
	mu := newTestMutex(t, "m")
	c := holdInChild(t, mu)
	pid := c.Process.Pid
	if mu.Recover(os.Getpid()) {
		t.Fatal("Recover of a pid that does not hold it said yes")
	}
	// A live holder (as a pid reused by a new process would be) keeps it.
	if mu.Recover(pid) || mu.Holder() != pid {
		t.Fatalf("Recover of the live holder took its lock (holder now %d)", mu.Holder())
	}
	c.kill()
	if !mu.Recover(pid) {
		t.Fatal("Recover of the dead holder said no")
	}
	if mu.Recover(pid) || mu.Holder() != 0 {
		t.Fatal("Recover twice")
	}
	died, err := mu.TryLock()
	if err != nil || !died {
		t.Fatalf("TryLock after Recover: died=%v err=%v", died, err)
	}
	mu.Unlock()
}

func TestMutexOpenChecksKind(t *testing.T) {
	m := newTestShm(t, "mem", 64)
	f, err := dupFile(m.File())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = OpenMutex(f, "m")
	wantErr(t, err, `mutex "m": open: descriptor`, "does not hold a mutex")
}

// TestMutexDeadSleepersLeaveTogether: sleepers killed in their sleep and
// not recovered, with the lock handed to the first of them, are cleared by
// the one repair that finds the holder dead, so the lock reaches the live
// sleeper behind them in one hand-off rather than one per dead sleeper and
// check period (a list that filled with dead sleepers faster than that
// starved TestMutexStressKills's incrementers on a loaded machine).
func TestMutexDeadSleepersLeaveTogether(t *testing.T) {
	const dead = 8
	var pids []uint32
	for range dead + 1 {
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, uint32(cmd.Process.Pid)) // reaped: gone
	}
	m := newTestMutex(t, "m")
	m.wl.lock()
	for _, pid := range pids[1:] {
		i := m.wl.join()
		m.wl.slots[i].pid.Store(pid)
	}
	m.wl.unlock()
	store32(m.word, pids[0]|handBit) // handed to a process that is gone

	var handoffs atomic.Int32
	testHook = func(p hookPoint) {
		if p == hookHandoff {
			handoffs.Add(1)
		}
	}
	t.Cleanup(func() { testHook = nil })
	died, err := m.Lock(WaitOpts{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !died {
		t.Error("Lock did not report that the holder died")
	}
	if n := handoffs.Load(); n != 1 {
		t.Errorf("%d hand-offs to reach the live sleeper behind %d dead ones, want 1", n, dead)
	}
	if q := m.wl.queued(); q != 0 {
		t.Errorf("%d still queued", q)
	}
	if h := m.Holder(); h != os.Getpid() {
		t.Errorf("holder %d, want this process %d", h, os.Getpid())
	}
}
