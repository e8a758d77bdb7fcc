package check

import (
	"strings"
	"testing"

	"github.com/ipcscript/ipcscript/trace"
)

// counter: each of a and b does get then set of the 8-byte counter.
func counterRound(s *sim, p int, at int64) {
	s.access(p, trace.OpGet, "mem", 0, 8, at).Where = "c.lua:10"
	s.access(p, trace.OpSet, "mem", 0, 8, at+1).Where = "c.lua:11"
}

func TestRaceUnlockedCounter(t *testing.T) {
	s := newSim("a", "b")
	for i := int64(0); i < 5; i++ {
		counterRound(s, 0, 10*i)
		counterRound(s, 1, 10*i+5) // never overlapping, never ordered
	}
	tr := s.trace()
	rs := tr.Races()
	// Pairs of lines: (10,11), (11,11): get/set and set/set.
	if len(rs) != 2 {
		t.Fatalf("want 2 races (once per pair of lines), got %d: %+v", len(rs), rs)
	}
	msg := tr.Explain(rs[0]).Error()
	for _, w := range []string{"data race on shm \"mem\" bytes 0..7", "c.lua:10", "c.lua:11", "a: ", "b: ", "no synchronization before it"} {
		if !strings.Contains(msg, w) {
			t.Errorf("explanation lacks %q:\n%s", w, msg)
		}
	}
}

func TestRaceNotUnderSemaphore(t *testing.T) {
	s := newSim("a", "b")
	s.post(0, "lock", 0) // initial value 1, as a post by nobody would be
	for i := int64(0); i < 5; i++ {
		for p := 0; p < 2; p++ {
			at := 100*i + 50*int64(p)
			s.wait(p, "lock", at)
			counterRound(s, p, at+1)
			s.post(p, "lock", at+3)
		}
	}
	if rs := s.trace().Races(); len(rs) != 0 {
		t.Fatalf("false positive: %+v", rs)
	}
}

func TestRaceNotWhenHandedOverByMessage(t *testing.T) {
	s := newSim("a", "b")
	counterRound(s, 0, 1)
	s.send(0, "token", 3)
	s.recv(1, "token", 0, 1, 4)
	counterRound(s, 1, 5)
	s.send(1, "token", 7)
	s.recv(0, "token", 1, 1, 8)
	counterRound(s, 0, 9)
	if rs := s.trace().Races(); len(rs) != 0 {
		t.Fatalf("false positive: %+v", rs)
	}
}

func TestRaceAtomicsNever(t *testing.T) {
	s := newSim("a", "b", "c")
	for i := int64(0); i < 10; i++ {
		for p := 0; p < 3; p++ {
			s.access(p, trace.OpAdd, "mem", 0, 8, 10*i+int64(p))
			s.access(p, trace.OpCAS, "mem", 0, 8, 10*i+int64(p)+3)
		}
	}
	if rs := s.trace().Races(); len(rs) != 0 {
		t.Fatalf("atomics reported: %+v", rs)
	}
}

// A spin lock built from cas orders what it guards.
func TestRaceCasLockSynchronizes(t *testing.T) {
	s := newSim("a", "b")
	for i := int64(0); i < 3; i++ {
		for p := 0; p < 2; p++ {
			at := 100*i + 50*int64(p)
			s.access(p, trace.OpCAS, "mem", 8, 4, at) // lock: 0 -> 1
			counterRound(s, p, at+1)
			s.access(p, trace.OpCAS, "mem", 8, 4, at+3) // unlock: 1 -> 0
		}
	}
	if rs := s.trace().Races(); len(rs) != 0 {
		t.Fatalf("false positive through a cas lock: %+v", rs)
	}
	// The order travels on: c reads what b wrote after a message from b.
	s2 := newSim("a", "b", "c")
	s2.access(0, trace.OpSet, "mem", 0, 8, 1)
	s2.access(0, trace.OpAdd, "mem", 8, 8, 2) // release
	s2.access(1, trace.OpAdd, "mem", 8, 8, 3) // acquire
	s2.send(1, "box", 4)
	s2.recv(2, "box", 1, 1, 5)
	s2.access(2, trace.OpGet, "mem", 0, 8, 6)
	if rs := s2.trace().Races(); len(rs) != 0 {
		t.Fatalf("false positive through atomic then message: %+v", rs)
	}
}

func TestRaceDisjointBytesAndReads(t *testing.T) {
	s := newSim("a", "b")
	s.access(0, trace.OpSet, "mem", 0, 8, 1)
	s.access(1, trace.OpSet, "mem", 8, 8, 2) // other bytes
	s.access(0, trace.OpGet, "mem", 16, 4, 3)
	s.access(1, trace.OpGet, "mem", 16, 4, 4) // two reads
	if rs := s.trace().Races(); len(rs) != 0 {
		t.Fatalf("false positive: %+v", rs)
	}
	s.access(1, trace.OpWrite, "mem", 4, 8, 5).Where = "w.lua:1" // overlaps a's bytes 4..7
	rs := s.trace().Races()
	if len(rs) != 1 || rs[0].Off != 4 || rs[0].Len != 4 {
		t.Fatalf("want one race on bytes 4..7, got %+v", rs)
	}
	// The last synchronization each side did is named.
	s = newSim("a", "b")
	s.post(0, "other", 1)
	s.access(0, trace.OpSet, "mem", 0, 8, 2)
	s.access(1, trace.OpSet, "mem", 0, 8, 3)
	tr := s.trace()
	rs = tr.Races()
	if len(rs) != 1 || rs[0].SyncA == nil || rs[0].SyncA.Op != trace.OpPost || rs[0].SyncB != nil {
		t.Fatalf("last synchronization wrong: %+v", rs)
	}
	if msg := tr.Explain(rs[0]).Error(); !strings.Contains(msg, "its last synchronization: a: post semaphore \"other\"") {
		t.Errorf("explanation:\n%s", msg)
	}
}

// 100,000 get+set pairs by two processes taking turns through a
// semaphore: the detector's own cost per recorded access.
func BenchmarkRaces200k(b *testing.B) {
	s := newSim("a", "b")
	s.post(0, "lock", 0)
	for i := int64(0); i < 50000; i++ {
		p := int(i % 2)
		at := 10 * i
		s.wait(p, "lock", at)
		counterRound(s, p, at+1)
		s.post(p, "lock", at+3)
	}
	tr := s.trace()
	b.ResetTimer()
	for b.Loop() {
		if rs := tr.Races(); len(rs) != 0 {
			b.Fatal("false positive")
		}
	}
}

func BenchmarkNew200k(b *testing.B) {
	s := newSim("a", "b")
	for i := int64(0); i < 100000; i++ {
		counterRound(s, int(i%2), 10*i)
	}
	t := &trace.Trace{Procs: []trace.Proc{{Name: "a"}, {Name: "b"}}}
	for _, e := range s.evs {
		t.Events = append(t.Events, *e)
	}
	b.ResetTimer()
	for b.Loop() {
		New(t)
	}
}
