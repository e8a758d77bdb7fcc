package ipc

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Fairness: 8 processes pass one unit of a semaphore (or one mutex) around
// 1,000 times each. The holder waits until the other 7 are asleep in the
// queue before it lets go, then joins the queue again itself; with FIFO
// service the order of the first 8 turns repeats exactly for all 8,000.
// The test asserts the order of turns, never a duration.

const fairProcs, fairRounds = 8, 1000

func init() {
	registerChild("fair-sem", childFairSem)
	registerChild("fair-mutex", childFairMutex)
}

func TestSemaphoreFIFO(t *testing.T) {
	s := newTestSemaphore(t, "turn", 1)
	testFair(t, "fair-sem", s.File())
	if s.Value() != 1 || s.wl.queued() != 0 {
		t.Fatalf("after the run: value %d, queued %d; want 1, 0", s.Value(), s.wl.queued())
	}
}

func TestMutexFIFO(t *testing.T) {
	m := newTestMutex(t, "turn")
	testFair(t, "fair-mutex", m.File())
	if m.Holder() != 0 || m.wl.queued() != 0 {
		t.Fatalf("after the run: holder %d, queued %d; want 0, 0", m.Holder(), m.wl.queued())
	}
}

func testFair(t *testing.T, mode string, f *os.File) {
	log := newTestShm(t, "log", 8+4*fairProcs*fairRounds)
	var cs []*testChild
	for i := 0; i < fairProcs; i++ {
		cs = append(cs, startChild(t, mode, []*os.File{f, log.File()}, strconv.Itoa(i)))
	}
	for _, c := range cs {
		c.wait(t)
	}
	if t.Failed() {
		return
	}
	n := mustGet(t, log, U32, 0)
	if n != UintNumber(fairProcs*fairRounds) {
		t.Fatalf("%v turns logged, want %d", n, fairProcs*fairRounds)
	}
	turn := func(k int) int {
		v, _ := mustGet(t, log, U32, 8+4*k).Int64()
		return int(v)
	}
	seen := map[int]bool{}
	for k := 0; k < fairProcs; k++ {
		seen[turn(k)] = true
	}
	if len(seen) != fairProcs {
		t.Fatalf("the first %d turns went to %d distinct processes", fairProcs, len(seen))
	}
	for k := fairProcs; k < fairProcs*fairRounds; k++ {
		if turn(k) != turn(k%fairProcs) {
			var got []int
			for j := k - fairProcs; j <= k; j++ {
				got = append(got, turn(j))
			}
			t.Fatalf("turn %d went to process %d, want %d (FIFO repeats the first round); turns %d..%d: %v",
				k, turn(k), turn(k%fairProcs), k-fairProcs, k, got)
		}
	}
}

// fairTurn logs this process's turn and waits until the others are all
// queued behind the holder.
func fairTurn(log *Shm, me int, queued func() uint32) {
	k, err := log.Add(U32, 0, IntNumber(1))
	if err != nil {
		childFatalf("%v", err)
	}
	kk, _ := k.Int64()
	log.Set(U32, 8+4*int(kk-1), IntNumber(int64(me)))
	// The others still to come: all 7, until the last round, in which
	// each turn is someone's last.
	want := uint32(min(fairProcs-1, fairProcs*fairRounds-int(kk)))
	deadline := time.Now().Add(60 * time.Second)
	for queued() != want {
		if time.Now().After(deadline) {
			childFatalf("the others never all queued (queued %d)", queued())
		}
		time.Sleep(20 * time.Microsecond)
	}
}

func childFairSem() {
	s, err := OpenSemaphore(childFile(0), "turn")
	if err != nil {
		childFatalf("%v", err)
	}
	log, err := OpenShm(childFile(1), "log")
	if err != nil {
		childFatalf("%v", err)
	}
	me, _ := strconv.Atoi(childArgs()[0])
	for r := 0; r < fairRounds; r++ {
		if err := s.Wait(WaitOpts{Timeout: 60 * time.Second}); err != nil {
			childFatalf("wait: %v", err)
		}
		fairTurn(log, me, s.wl.queued)
		if err := s.Post(1); err != nil {
			childFatalf("post: %v", err)
		}
	}
}

func childFairMutex() {
	m, err := OpenMutex(childFile(0), "turn")
	if err != nil {
		childFatalf("%v", err)
	}
	log, err := OpenShm(childFile(1), "log")
	if err != nil {
		childFatalf("%v", err)
	}
	me, _ := strconv.Atoi(childArgs()[0])
	for r := 0; r < fairRounds; r++ {
		if _, err := m.Lock(WaitOpts{Timeout: 60 * time.Second}); err != nil {
			childFatalf("lock: %v", err)
		}
		fairTurn(log, me, m.wl.queued)
		if err := m.Unlock(); err != nil {
			childFatalf("unlock: %v", err)
		}
	}
}
