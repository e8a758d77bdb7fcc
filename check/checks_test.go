package check

import (
	"strings"
	"testing"
)

func mustPass(t *testing.T, v *Violation) {
	t.Helper()
	if v != nil {
		t.Fatalf("want the check to hold, got:\n%s", v.Error())
	}
}

func mustFail(t *testing.T, v *Violation, wants ...string) *Violation {
	t.Helper()
	if v == nil {
		t.Fatalf("want a violation, the check held")
	}
	msg := v.Error()
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("explanation lacks %q:\n%s", w, msg)
		}
	}
	if !strings.HasPrefix(v.Mermaid, "sequenceDiagram\n") || !strings.Contains(v.Mermaid, "!! ") {
		t.Errorf("no window with the key events marked:\n%s", v.Mermaid)
	}
	return v
}

func TestExclusiveOrderedBySemaphore(t *testing.T) {
	s := newSim("a", "b")
	s.wait(0, "mutex", 1)
	s.span(0, "crit", 2, 3)
	s.post(0, "mutex", 4)
	s.wait(1, "mutex", 5)
	s.span(1, "crit", 6, 7)
	s.post(1, "mutex", 8)
	mustPass(t, s.trace().Exclusive("crit"))
}

func TestExclusiveOverlapFails(t *testing.T) {
	s := newSim("a", "b")
	s.span(0, "crit", 1, 5)
	s.span(1, "crit", 3, 7)
	mustFail(t, s.trace().Exclusive("crit"), "at the same time", "a: span \"crit\" (t.lua:1)", "b: span \"crit\" (t.lua:3)", "participant P0 as a", "participant P1 as b")
}

// The case a timing-based check misses: the spans did not overlap, but
// nothing ordered them.
func TestExclusiveUnorderedButNotOverlappingFails(t *testing.T) {
	s := newSim("a", "b")
	s.span(0, "crit", 1, 2)
	s.span(1, "crit", 5, 6)
	mustFail(t, s.trace().Exclusive("crit"), "only by timing")
}

func TestExclusiveSameProcessAndOtherLabels(t *testing.T) {
	s := newSim("a", "b")
	outer := s.begin(0, "crit", 1)
	s.span(0, "crit", 2, 3) // nested, same process
	s.end(outer, 4)
	s.span(1, "other", 2, 3) // another label overlaps: fine
	s.send(0, "box", 5)
	s.recv(1, "box", 0, 1, 6)
	s.span(1, "crit", 7, 8)
	mustPass(t, s.trace().Exclusive("crit"))
}

// Three processes in a chain a -> b -> c: c's span is after a's only
// transitively, which the sweep relies on.
func TestExclusiveTransitive(t *testing.T) {
	s := newSim("a", "b", "c")
	s.span(0, "crit", 1, 2)
	s.send(0, "x", 3)
	s.recv(1, "x", 0, 1, 4)
	s.span(1, "crit", 5, 6)
	s.send(1, "y", 7)
	s.recv(2, "y", 1, 1, 8)
	s.span(2, "crit", 9, 10)
	mustPass(t, s.trace().Exclusive("crit"))
	s.span(0, "crit", 11, 12) // a again, unordered after c
	mustFail(t, s.trace().Exclusive("crit"), "only by timing", "c: span", "a: span")
}

func TestExclusiveRW(t *testing.T) {
	s := newSim("r1", "r2", "w")
	s.span(0, "read", 1, 5)
	s.span(1, "read", 2, 6) // readers overlap: fine
	s.post(0, "room", 7)
	s.post(1, "room", 7)
	s.wait(2, "room", 8)
	s.span(2, "write", 9, 10)
	mustPass(t, s.trace().ExclusiveRW("write", "read"))

	s = newSim("r", "w")
	s.span(0, "read", 1, 5)
	s.span(1, "write", 3, 4)
	mustFail(t, s.trace().ExclusiveRW("write", "read"), "r (in span \"read\") and w (in span \"write\") were at the same time")

	s = newSim("r", "w")
	s.span(1, "write", 1, 2)
	s.span(0, "read", 3, 4) // after, but not ordered
	mustFail(t, s.trace().ExclusiveRW("write", "read"), "only by timing")

	s = newSim("w1", "w2")
	s.span(0, "write", 1, 2)
	s.span(1, "write", 3, 4)
	mustFail(t, s.trace().ExclusiveRW("write", "read"), "w1 and w2 were in span \"write\"")
}

func TestBounded(t *testing.T) {
	// Two chairs: C waits for A's post, D for B's. A and C are ordered, so
	// are B and D: never more than two at once even though A, B, C, D do
	// not form a chain.
	s := newSim("a", "b", "c", "d")
	s.span(0, "chair", 1, 3)
	s.post(0, "free", 4)
	s.span(1, "chair", 2, 6)
	s.wait(2, "free", 5)
	s.span(2, "chair", 6, 9)
	s.post(1, "free2", 7)
	s.wait(3, "free2", 8)
	s.span(3, "chair", 9, 12)
	mustPass(t, s.trace().Bounded("chair", 2))
	mustFail(t, s.trace().Bounded("chair", 1), "2 spans \"chair\" were at once (at most 1 allowed)")

	s = newSim("a", "b", "c")
	s.span(0, "chair", 1, 5)
	s.span(1, "chair", 2, 6)
	s.span(2, "chair", 3, 7)
	mustFail(t, s.trace().Bounded("chair", 2), "3 spans", "overlapping in time")

	s = newSim("a", "b", "c")
	s.span(0, "chair", 1, 2)
	s.span(1, "chair", 3, 4)
	s.span(2, "chair", 5, 6)
	mustFail(t, s.trace().Bounded("chair", 2), "3 spans", "nothing ordering them")
}

func TestEachOnce(t *testing.T) {
	s := newSim("p", "c1", "c2")
	s.send(0, "box", 1)
	s.send(0, "box", 2)
	s.recv(1, "box", 0, 1, 3)
	s.recv(2, "box", 0, 2, 4)
	mustPass(t, s.trace().EachOnce("box"))

	s = newSim("p", "c")
	s.send(0, "box", 1)
	s.send(0, "box", 2)
	s.recv(1, "box", 0, 1, 3)
	mustFail(t, s.trace().EachOnce("box"), "message p no. 2 sent to \"box\" was never received")

	s = newSim("p", "c1", "c2")
	s.send(0, "box", 1)
	s.recv(1, "box", 0, 1, 3)
	s.recv(2, "box", 0, 1, 4)
	mustFail(t, s.trace().EachOnce("box"), "received 2 times")

	s = newSim("p", "c")
	s.recv(1, "box", 0, 7, 3)
	mustFail(t, s.trace().EachOnce("box"), "which no recorded send put there")

	s = newSim("p", "c")
	s.send(0, "box", 1).Outcome = "full" // never went in
	mustPass(t, s.trace().EachOnce("box"))
}

func TestFIFO(t *testing.T) {
	s := newSim("p", "c")
	for i := 1; i <= 3; i++ {
		s.send(0, "box", int64(i))
	}
	for i := 1; i <= 3; i++ {
		s.recv(1, "box", 0, uint64(i), int64(10+i))
	}
	mustPass(t, s.trace().FIFO("box"))

	s = newSim("p", "c")
	s.send(0, "box", 1)
	s.send(0, "box", 2)
	s.recv(1, "box", 0, 2, 3)
	s.recv(1, "box", 0, 1, 4)
	mustFail(t, s.trace().FIFO("box"), "no. 2 was received before no. 1")

	// Two receivers whose receives nothing orders: not an order violation.
	s = newSim("p", "c1", "c2")
	s.send(0, "box", 1)
	s.send(0, "box", 2)
	s.recv(2, "box", 0, 2, 3)
	s.recv(1, "box", 0, 1, 3)
	mustPass(t, s.trace().FIFO("box"))
}

func TestHappensBeforeAndConcurrent(t *testing.T) {
	s := newSim("a", "b")
	s.mark(0, "ready", 1)
	s.send(0, "box", 2)
	s.recv(1, "box", 0, 1, 3)
	s.mark(1, "use", 4)
	tr := s.trace()
	mustPass(t, tr.HappensBefore(Filter{Label: "ready"}, Filter{Label: "use"}))
	mustFail(t, tr.HappensBefore(Filter{Label: "use"}, Filter{Label: "ready"}), "the other way round")
	mustFail(t, tr.Concurrent(Filter{Label: "ready"}, Filter{Label: "use"}), "every pair was ordered")

	s = newSim("a", "b")
	s.mark(0, "ready", 1)
	s.mark(1, "use", 4)
	tr = s.trace()
	mustFail(t, tr.HappensBefore(Filter{Label: "ready"}, Filter{Label: "use"}), "nothing ordered a's mark ready (t.lua:1) before b's mark use (t.lua:4)")
	mustPass(t, tr.Concurrent(Filter{Label: "ready"}, Filter{Label: "use"}))
}

func TestProgress(t *testing.T) {
	s := newSim("a", "b")
	s.mark(0, "start", 0)
	w := s.wait(0, "sem", 1)
	w.End = 10 // blocked 1..10
	s.mark(0, "end", 11)
	s.mark(1, "start", 0)
	s.mark(1, "end", 11)
	tr := s.trace()
	mustPass(t, tr.Progress("b", 0.1))
	mustPass(t, tr.Progress("a", 0.9))
	mustFail(t, tr.Progress("a", 0.5), "a was blocked 82% of its life")
}

func TestWindowBringsInTheSender(t *testing.T) {
	s := newSim("a", "b", "c")
	s.span(1, "crit", 1, 2)
	s.send(0, "box", 3)
	s.recv(1, "box", 0, 1, 4)
	s.span(2, "crit", 5, 6)
	v := s.trace().Exclusive("crit")
	if v == nil {
		t.Fatal("want a violation")
	}
	for _, w := range []string{"participant P0 as a", "participant P1 as b", "participant P2 as c", "P0-)P1: send box a no. 1"} {
		if !strings.Contains(v.Mermaid, w) {
			t.Errorf("window lacks %q:\n%s", w, v.Mermaid)
		}
	}
}

// A check with nothing to judge (a misspelt label, an unrecorded run)
// fails instead of passing by default.
func TestNothingRecordedFails(t *testing.T) {
	s := newSim("a", "b")
	s.span(0, "crit", 1, 2)
	s.send(0, "box", 3)
	tr := s.trace()
	for _, v := range []*Violation{
		tr.Exclusive("crti"), tr.ExclusiveRW("write", "read"), tr.Bounded("crti", 2),
		tr.EachOnce("bx"), tr.FIFO("bx"),
		tr.HappensBefore(Filter{Label: "nope"}, Filter{Label: "crit"}),
		tr.HappensBefore(Filter{Label: "crit"}, Filter{Proc: "c"}),
		tr.Concurrent(Filter{Label: "crit"}, Filter{Label: "crit"}),
		tr.Progress("c", 0.5), tr.Linearizable("reg", registerModel),
	} {
		if v == nil || !strings.Contains(v.Error(), "was recorded (is the name right?") {
			t.Errorf("want a 'nothing recorded' violation, got %v", v)
		}
	}
	if v := tr.HappensBefore(Filter{Label: "crit"}, Filter{Proc: "c"}); !strings.Contains(v.Error(), `no event matches {proc = "c"}`) {
		t.Errorf("filter not shown: %v", v)
	}
}

// Concurrent must fail whenever every pair it selects is ordered, however
// the order was made: through a third process, by a semaphore, or by a
// chain of both; and when only events of one process match.
func TestConcurrentFailsWhenOrdered(t *testing.T) {
	// a -> c -> b: a's read and b's read are ordered only transitively
	s := newSim("a", "b", "c")
	s.span(0, "read", 1, 2)
	s.send(0, "x", 3)
	s.recv(2, "x", 0, 1, 4)
	s.send(2, "y", 5)
	s.recv(1, "y", 2, 1, 6)
	s.span(1, "read", 7, 8)
	mustFail(t, s.trace().Concurrent(Filter{Proc: "a", Label: "read"}, Filter{Proc: "b", Label: "read"}),
		"every pair was ordered", "a's span read (t.lua:1) before b's span read (t.lua:7)")

	// a semaphore orders each reader's read after the other's, in turn
	s = newSim("r.1", "r.2")
	s.span(0, "read", 1, 2)
	s.post(0, "turn", 3)
	s.wait(1, "turn", 4)
	s.span(1, "read", 5, 6)
	s.post(1, "turn", 7)
	s.wait(0, "turn", 8)
	s.span(0, "read", 9, 10)
	mustFail(t, s.trace().Concurrent(Filter{Proc: "r.1", Label: "read"}, Filter{Proc: "r.2", Label: "read"}), "every pair was ordered")
	mustFail(t, s.trace().Concurrent(Filter{Label: "read"}, Filter{Label: "read"}), "every pair was ordered")

	// one unordered pair is enough to pass, even among ordered ones
	s.span(1, "read", 9, 12)
	mustPass(t, s.trace().Concurrent(Filter{Label: "read"}, Filter{Label: "read"}))

	// overlapping in time but in one process: not concurrency
	s = newSim("a", "b")
	s.span(0, "read", 1, 5)
	s.span(0, "read", 2, 3)
	s.mark(1, "other", 2)
	if v := s.trace().Concurrent(Filter{Label: "read"}, Filter{Label: "read"}); v == nil || !strings.Contains(v.Error(), "no pair of events in different processes") {
		t.Errorf("want a violation naming no pair in different processes, got %v", v)
	}
}

// Progress must fail for a starved instance of a group (named), for waits
// that add up past the share, and must not count a span as blocked.
func TestProgressFails(t *testing.T) {
	s := newSim("w.1", "w.2", "w.3")
	for p := 0; p < 3; p++ {
		s.mark(p, "start", 0)
	}
	s.wait(1, "sem", 1).End = 99 // w.2 starves: blocked 1..99 of 0..100
	s.mark(1, "end", 100)
	s.mark(0, "end", 100)
	s.mark(2, "end", 100)
	tr := s.trace()
	mustFail(t, tr.Progress("w", 0.5), "w.2 was blocked 98% of its life")
	mustFail(t, tr.Progress("w.2", 0.9), "w.2 was blocked 98%")
	mustPass(t, tr.Progress("w.1", 0.01))

	// several short waits add up
	s = newSim("a")
	s.mark(0, "start", 0)
	for i := int64(0); i < 6; i++ {
		s.wait(0, "sem", 10*i+1).End = 10*i + 9 // 8 of every 10
	}
	s.mark(0, "end", 60)
	mustFail(t, s.trace().Progress("a", 0.7), "a was blocked 80% of its life")
	mustPass(t, s.trace().Progress("a", 0.85))

	// a long span is work, not blocking; the wait inside it is
	s = newSim("a")
	s.mark(0, "start", 0)
	sp := s.begin(0, "work", 1)
	s.wait(0, "sem", 2).End = 8
	s.end(sp, 99)
	s.mark(0, "end", 100)
	mustPass(t, s.trace().Progress("a", 0.1))
	mustFail(t, s.trace().Progress("a", 0.05), "a was blocked 6% of its life")
}
