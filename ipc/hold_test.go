package ipc

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// A sleep that holds the P ends when woken, at its deadline, or after
// holdMax (errHoldOver), and at once when the word has already changed.
func TestFutexWaitHeld(t *testing.T) {
	var w atomic.Uint32
	addr := (*uint32)(unsafe.Pointer(&w))
	if err := futexWaitHeld(addr, 1, time.Time{}); err != nil {
		t.Fatalf("word already changed: %v, want nil", err)
	}
	if err := futexWaitHeld(addr, 0, time.Now().Add(time.Millisecond)); err != ErrTimeout {
		t.Fatalf("deadline before holdMax: %v, want ErrTimeout", err)
	}
	if err := futexWaitHeld(addr, 0, time.Time{}); err != errHoldOver {
		t.Fatalf("no deadline, nobody wakes: %v, want errHoldOver", err)
	}
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("the waker needs a P of its own")
	}
	done := make(chan error)
	go func() {
		for w.Load() == 0 {
			done <- futexWaitHeld(addr, 0, time.Now().Add(time.Minute))
		}
		close(done)
	}()
	time.Sleep(time.Millisecond)
	w.Store(1)
	FutexWake(addr, 1)
	for err := range done {
		if err != nil && err != errHoldOver {
			t.Fatalf("woken: %v, want nil", err)
		}
	}
}

// With SetHoldP, an object's sleeps hold the P until one outlasts
// holdMax; then they are long sleeps (on the bell, or ordinary ones) until
// shortRun in a row are short.
func TestSpinnerSleepHold(t *testing.T) {
	defer SetHoldP(holdP.Load())
	SetHoldP(true)
	var sp spinner
	var w atomic.Uint32
	addr := (*uint32)(unsafe.Pointer(&w))
	for i := range 2 {
		// Nobody wakes: the held part ends after holdMax, the rest ends at
		// the deadline.
		if err := sleepOut(&sp, addr, holdMax+5*time.Millisecond); err != ErrTimeout {
			t.Fatalf("sleep %d: %v, want ErrTimeout", i, err)
		}
		if n := sp.long.Load(); n != 1 {
			t.Fatalf("after %d long sleeps: long %d, want 1", i+1, n)
		}
	}
	// Short sleeps: the word has changed already, so each returns at once;
	// on a saturated machine the thread may still be descheduled for more
	// than shortSleep in between, so the sleeps' clock stands still here.
	defer func(c func() int64) { sleepClock = c }(sleepClock)
	sleepClock = func() int64 { return 0 }
	for i := range shortRun {
		if err := sp.sleep(addr, 1, time.Time{}); err != nil { // a short sleep
			t.Fatal(err)
		}
		if n := sp.long.Load(); i < shortRun-1 && n != 1 {
			t.Fatalf("after %d short sleeps: long %d, want 1", i+1, n)
		}
	}
	if n := sp.long.Load(); n != 0 {
		t.Fatalf("after %d short sleeps: long %d, want 0", shortRun, n)
	}
}

// PauseHold turns holding off until resumed: a sleep that outlasts
// holdMax is then an ordinary one, and is not counted as a long held one.
func TestPauseHold(t *testing.T) {
	defer SetHoldP(holdP.Load())
	SetHoldP(true)
	var sp spinner
	var w atomic.Uint32
	addr := (*uint32)(unsafe.Pointer(&w))
	resume := PauseHold()
	if err := sleepOut(&sp, addr, holdMax+5*time.Millisecond); err != ErrTimeout {
		t.Fatalf("paused: %v, want ErrTimeout", err)
	}
	if n := sp.long.Load(); n != 0 {
		t.Fatalf("paused: %d long held sleeps counted, want 0 (no held sleep)", n)
	}
	resume()
	if err := sleepOut(&sp, addr, holdMax+5*time.Millisecond); err != ErrTimeout {
		t.Fatalf("resumed: %v, want ErrTimeout", err)
	}
	if n := sp.long.Load(); n != 1 {
		t.Fatalf("resumed: %d long held sleeps counted, want 1", n)
	}
}

// TestQueueHeldProcesses is TestQueueProcesses and a room-bound run with
// children that run as a run's children do: GOMAXPROCS=1, queue sleeps
// holding the P. Every message once, in order per producer.
func TestQueueHeldProcesses(t *testing.T) {
	t.Setenv(holdEnv, "1")
	for _, c := range []struct{ capacity, producers, consumers int }{{1, 2, 1}, {8, 4, 3}, {Unbounded, 1, 1}} {
		t.Run(fmt.Sprintf("cap%d_%dto%d", c.capacity, c.producers, c.consumers), func(t *testing.T) {
			queueProcesses(t, c.capacity, c.producers, c.consumers, 6000/c.producers)
		})
	}
}

// holdEnv makes a queue child hold the P in its sleeps, with one P.
const holdEnv = "IPC_TEST_HOLD"

func init() {
	if os.Getenv(holdEnv) != "" && os.Getenv(childEnv) != "" {
		runtime.GOMAXPROCS(1)
		SetHoldP(true)
	}
}

// sleepOut is sp.sleep(addr, 0, now + d) with nobody waking, slept again
// after a spurious wake: a signal (the Go runtime's preemption, frequent
// under -race and load) ends FutexWait with nil, which its callers take
// as "look again". The long-sleep count is put back as it was before that
// sleep, as if it had not happened. (Under tests/stress.sh, sleep 2 of
// TestSpinnerSleepHold once returned nil so.)
func sleepOut(sp *spinner, addr *uint32, d time.Duration) error {
	for try := 0; ; try++ {
		before := sp.long.Load()
		err := sp.sleep(addr, 0, time.Now().Add(d))
		if err != nil || try == 100 {
			return err
		}
		sp.long.Store(before)
	}
}
