package ipc

import (
	"os"
	"strconv"
	"testing"
	"time"
)

func init() {
	registerChild("barrier-phases", childBarrierPhases)
	registerChild("barrier-wait", childBarrierWait)
}

func newTestBarrier(tb testing.TB, name string, n int) *Barrier {
	tb.Helper()
	b, err := NewBarrier(name, n)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

// TestBarrierPhases: 4 processes × 200 phases. Each adds 1 to a counter
// before every wait; after the wait of phase p the counter is at least
// 4(p+1) (nobody passed early) and below 4(p+2); exactly one party per
// phase is serial.
func TestBarrierPhases(t *testing.T) {
	const procs, phases = 4, 200
	b := newTestBarrier(t, "b", procs)
	mem := newTestShm(t, "count", 16)
	var cs []*testChild
	for i := 0; i < procs; i++ {
		cs = append(cs, startChild(t, "barrier-phases", []*os.File{b.File(), mem.File()}, strconv.Itoa(phases)))
	}
	for _, c := range cs {
		c.wait(t)
	}
	if got := mustGet(t, mem, U32, 0); got != UintNumber(procs*phases) {
		t.Fatalf("count %v, want %d", got, procs*phases)
	}
	if got := mustGet(t, mem, U32, 4); got != UintNumber(phases) {
		t.Fatalf("%v serial parties, want one per phase (%d)", got, phases)
	}
	if b.Arrived() != 0 || b.Broken() {
		t.Fatalf("after: arrived %d broken %v", b.Arrived(), b.Broken())
	}
}

func childBarrierPhases() {
	b, err1 := OpenBarrier(childFile(0), "b")
	mem, err2 := OpenShm(childFile(1), "count")
	if err1 != nil || err2 != nil {
		childFatalf("%v %v", err1, err2)
	}
	phases, _ := strconv.Atoi(childArgs()[0])
	n := int64(b.Parties())
	for p := int64(0); p < int64(phases); p++ {
		mem.Add(U32, 0, IntNumber(1))
		serial, err := b.Wait(WaitOpts{Timeout: 60 * time.Second})
		if err != nil {
			childFatalf("phase %d: %v", p, err)
		}
		if serial {
			mem.Add(U32, 4, IntNumber(1))
		}
		v, _ := mustChildGet(mem, 0).Int64()
		if v < n*(p+1) || v >= n*(p+2) {
			childFatalf("phase %d: count %d after the barrier, want %d..%d", p, v, n*(p+1), n*(p+2)-1)
		}
	}
}

// childBarrierWait waits once; it records 1 at 4*idx in the shm when the
// wait returned ErrClosed.
func childBarrierWait() {
	b, err1 := OpenBarrier(childFile(0), "b")
	mem, err2 := OpenShm(childFile(1), "out")
	if err1 != nil || err2 != nil {
		childFatalf("%v %v", err1, err2)
	}
	idx, _ := strconv.Atoi(childArgs()[0])
	_, err := b.Wait(WaitOpts{})
	if err == ErrClosed {
		mem.Set(U32, 4*idx, IntNumber(1))
		return
	}
	if err != nil {
		childFatalf("%v", err)
	}
	time.Sleep(time.Hour)
}

// TestBarrierBrokenByDeath: a party killed inside the barrier breaks it;
// the party still waiting and every later one get ErrClosed.
func TestBarrierBrokenByDeath(t *testing.T) {
	b := newTestBarrier(t, "b", 3)
	out := newTestShm(t, "out", 16)
	a := startChild(t, "barrier-wait", []*os.File{b.File(), out.File()}, "0")
	waitFor(t, "a to arrive", func() bool { return b.Arrived() == 1 })
	w := startChild(t, "barrier-wait", []*os.File{b.File(), out.File()}, "1")
	waitFor(t, "w to arrive", func() bool { return b.Arrived() == 2 })
	a.kill()
	if b.Recover(os.Getpid()) {
		t.Fatal("Recover of a live process that is not in the barrier said yes")
	}
	if !b.Recover(a.Process.Pid) {
		t.Fatal("Recover of the dead party said no")
	}
	w.wait(t)
	if mustGet(t, out, U32, 4) != UintNumber(1) {
		t.Fatal("the waiting party was not told the barrier broke")
	}
	if _, err := b.Wait(WaitOpts{Timeout: 10 * time.Second}); err != ErrClosed {
		t.Fatalf("a later wait: %v, want ErrClosed", err)
	}
}

func TestBarrierTimeoutAndNonBlocking(t *testing.T) {
	b := newTestBarrier(t, "b", 2)
	if _, err := b.Wait(WaitOpts{NonBlocking: true}); err != ErrEmpty {
		t.Fatalf("non-blocking wait: %v, want ErrEmpty", err)
	}
	if _, err := b.Wait(WaitOpts{Timeout: 20 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("wait with timeout: %v, want ErrTimeout", err)
	}
	if b.Arrived() != 0 {
		t.Fatalf("a timed-out arrival was not withdrawn: arrived %d", b.Arrived())
	}
	// Two goroutines meet; one is serial; then again (reusable).
	for phase := 0; phase < 3; phase++ {
		res := make(chan bool, 2)
		for i := 0; i < 2; i++ {
			go func() {
				s, err := b.Wait(WaitOpts{Timeout: 20 * time.Second})
				if err != nil {
					t.Error(err)
				}
				res <- s
			}()
		}
		if s1, s2 := <-res, <-res; s1 == s2 {
			t.Fatalf("phase %d: serial %v and %v, want exactly one", phase, s1, s2)
		}
	}
	one := newTestBarrier(t, "one", 1)
	if s, err := one.Wait(WaitOpts{NonBlocking: true}); err != nil || !s {
		t.Fatalf("a barrier of 1: %v %v, want serial", s, err)
	}
	_, err := NewBarrier("zero", 0)
	wantErr(t, err, `barrier "zero": create: party count 0 must be between 1 and 65535`)
}
