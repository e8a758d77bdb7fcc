package ipc

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// Crash safety of the waitlists: a process SIGKILLed inside the short
// locked section, between committing a hand-off and granting it, or
// between storing a grant and waking the sleeper, must leave the object
// so that the sleeper gets exactly what was handed to it: the lock once,
// the unit once, the signal once.

func init() {
	registerChild("wl-stopat", childWaitlistStopAt)
}

// childWaitlistStopAt: args kind, point. Objects on fds 3 (the object), 4
// (a mutex for cond), 5 (semaphore "ready"), 6 (semaphore "go"). The child
// prepares (a mutex child takes the lock), posts ready, waits for go, then
// runs the operation that hands something to the parent's sleeper (unlock,
// post, signal) and stops at point inside the waitlist's lock: it prints
// "stopped" and waits to be killed.
func childWaitlistStopAt() {
	kind, point := childArgs()[0], childArgs()[1]
	ready, err := OpenSemaphore(childFile(2), "ready")
	if err != nil {
		childFatalf("%v", err)
	}
	goOn, err := OpenSemaphore(childFile(3), "go")
	if err != nil {
		childFatalf("%v", err)
	}
	want := map[string]hookPoint{"handoff": hookHandoff, "granted": hookGrantStored}[point]
	arm := func() {
		testHook = func(p hookPoint) {
			if p == want {
				fmt.Println("stopped")
				time.Sleep(time.Hour)
			}
		}
	}
	// Each kind makes its object ready (a mutex: locked), then, once the
	// parent says so and the hook is armed, does the operation that grants.
	var grant func() error
	switch kind {
	case "mutex":
		mu, err := OpenMutex(childFile(0), "m")
		if err != nil {
			childFatalf("%v", err)
		}
		if _, err := mu.Lock(WaitOpts{}); err != nil {
			childFatalf("%v", err)
		}
		grant = mu.Unlock
	case "semaphore":
		s, err := OpenSemaphore(childFile(0), "s")
		if err != nil {
			childFatalf("%v", err)
		}
		grant = func() error { return s.Post(1) }
	case "cond":
		c, err := OpenCond(childFile(0), "c")
		if err != nil {
			childFatalf("%v", err)
		}
		grant = c.Signal
	default:
		childFatalf("no such kind %q", kind)
	}
	ready.Post(1)
	goOn.Wait(WaitOpts{})
	arm()
	grant()
	childFatalf("%s finished without stopping at %s", kind, point)
}

// TestWaitlistCrashHandoff: for each object and each point, a process
// stopped there holding the waitlist's lock is killed; then the
// supervisor's Recover (or, for a mutex, the sleeper's own periodic look)
// repairs the list. The parent's sleeper must get the hand-off exactly
// once: the mutex is held by it alone, the semaphore's value is 0 and no
// second unit can be taken, the cond waiter returns signalled.
func TestWaitlistCrashHandoff(t *testing.T) {
	for _, tc := range []struct {
		kind, point string
		recover     bool
	}{
		{"mutex", "handoff", true},
		{"mutex", "handoff", false},
		{"mutex", "granted", true},
		{"mutex", "granted", false},
		{"semaphore", "handoff", true},
		{"semaphore", "granted", true},
		{"cond", "granted", true},
	} {
		t.Run(fmt.Sprintf("%s/%s/recover=%v", tc.kind, tc.point, tc.recover), func(t *testing.T) {
			mu := newTestMutex(t, "m")
			sem := newTestSemaphore(t, "s", 0)
			cond := newTestCond(t, "c")
			ready := newTestSemaphore(t, "ready", 0)
			goOn := newTestSemaphore(t, "go", 0)
			obj := map[string]*os.File{"mutex": mu.File(), "semaphore": sem.File(), "cond": cond.File()}[tc.kind]
			c := startStopping(t, "wl-stopat", []*os.File{obj, mu.File(), ready.File(), goOn.File()}, tc.kind, tc.point)
			if err := ready.Wait(WaitOpts{}); err != nil {
				t.Fatal(err)
			}

			// The parent's sleeper.
			done := make(chan error, 1)
			switch tc.kind {
			case "mutex":
				go func() {
					died, err := mu.Lock(WaitOpts{})
					if err == nil && died {
						err = fmt.Errorf("lock reported its owner died: it was handed over")
					}
					done <- err
				}()
				waitFor(t, "the locker to sleep", func() bool { return mu.wl.queued() == 1 })
			case "semaphore":
				go func() { done <- sem.Wait(WaitOpts{}) }()
				waitFor(t, "the waiter to sleep", func() bool { return sem.wl.queued() == 1 })
			case "cond":
				if _, err := mu.Lock(WaitOpts{}); err != nil {
					t.Fatal(err)
				}
				go func() {
					_, err := cond.Wait(mu, WaitOpts{})
					done <- err
				}()
				waitFor(t, "the cond waiter to sleep", func() bool { return cond.wl.queued() == 1 })
			}

			// The sleeper asleep in the kernel, not merely queued: a grant
			// stored before its FUTEX_WAIT would end the wait without a wake.
			wl := map[string]*waitlist{"mutex": &mu.wl, "semaphore": &sem.wl, "cond": &cond.wl}[tc.kind]
			for i := range wl.slots {
				if wl.slots[i].state.Load() == slotWaiting {
					waitInFutex(t, (*uint32)(unsafe.Pointer(&wl.slots[i].state)))
				}
			}
			goOn.Post(1)
			awaitStopped(t, c)
			pid := c.Process.Pid
			c.Process.Signal(syscall.SIGKILL)
			c.Wait()
			if tc.recover {
				switch tc.kind {
				case "mutex":
					mu.Recover(pid)
				case "semaphore":
					sem.Recover(pid)
				case "cond":
					cond.Recover(pid)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			switch tc.kind {
			case "mutex", "cond":
				if h := mu.Holder(); h != os.Getpid() {
					t.Fatalf("holder %d, want this process %d", h, os.Getpid())
				}
				if err := mu.Unlock(); err != nil {
					t.Fatal(err)
				}
				if died, err := mu.TryLock(); err != nil || died {
					t.Fatalf("the next lock: died=%v err=%v", died, err)
				}
				mu.Unlock()
			case "semaphore":
				if v := sem.Value(); v != 0 {
					t.Fatalf("value %d after the one unit was taken, want 0", v)
				}
				if err := sem.TryWait(); err != ErrEmpty {
					t.Fatalf("a second unit: %v, want ErrEmpty", err)
				}
			}
			for _, wl := range []*waitlist{&mu.wl, &sem.wl, &cond.wl} {
				if q := wl.queued(); q != 0 {
					t.Fatalf("%d still queued", q)
				}
				if j := wl.journalWord().Load(); j != 0 {
					t.Fatalf("journal left at %#x", j)
				}
			}
		})
	}
}
