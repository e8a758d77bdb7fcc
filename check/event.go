// Package check judges a recorded run: properties over its events
// (exclusive, bounded, each_once, fifo, happens_before, concurrent,
// progress, linearizable) and a race detector for shared memory.
//
// It works on a small view of the trace (Event): who did what, where in
// the script, when, and the vector clock that says what happened before
// it. A check returns nil when the property holds, or a *Violation that
// names the events that break it and the smallest window of the trace that
// shows it, as Mermaid text.
//
// The package imports only the standard library: the runtime turns its
// recording into []Event, and the Lua face lives in bindings.
package check

import (
	"fmt"
	"sort"
	"strings"
)

// Access says how an event touched shared memory.
type Access int

const (
	NoAccess Access = iota
	Read            // mem:get, mem:read
	Write           // mem:set, mem:write
	Atomic          // mem:add, mem:cas: atomic read-modify-write; synchronizes
)

// Event is one recorded operation, as the checks see it. Intervals (spans,
// blocking operations) are one Event with Begin < End; instants have
// Begin == End.
type Event struct {
	ID     int    // position in the run's merged list (ordered by Begin)
	Proc   int    // process index: the vector clock's component
	Name   string // process name ("worker.2")
	Seq    int    // per-process sequence number (program order)
	Kind   string // "span", "mark", "send", "receive", "shm.get", "sem.wait", ...
	Object string // the object's script name, "" for none
	Label  string // ipc.span / ipc.mark label
	Line   string // the script's file:line of the operation
	Begin  int64  // CLOCK_MONOTONIC ns
	End    int64

	// Clock is the vector clock at End; BeginClock at Begin (nil: the same).
	Clock      VC
	BeginClock VC

	Blocked bool   // a blocking operation: Begin..End was spent waiting
	Outcome string // "", "timeout", "empty", "full", "closed"

	// Messages: the message's id is (Sender, MsgSeq).
	Sender string
	MsgSeq int

	// Shared memory accesses.
	Access Access
	Off    int
	Len    int

	// Spans: the arguments fn was called with and what it returned.
	Args    []any
	Results []any
}

// IsSync says whether the event is a synchronization a race report names
// as "the last synchronization" of its side.
func (e *Event) IsSync() bool {
	if e.Access == Atomic {
		return true
	}
	switch e.Kind {
	case "send", "receive", "select", "sem.wait", "sem.post", "mutex.lock", "mutex.unlock",
		"mq.send", "mq.receive", "stream.write", "stream.read", "accept", "connect":
		return true
	}
	return false
}

func (e *Event) begin() VC {
	if e.BeginClock != nil {
		return e.BeginClock
	}
	return e.Clock
}

// VC is a vector clock: component i counts the events of process i that
// happened before (or are) this one.
type VC []uint64

// Leq says v <= w componentwise.
func (v VC) Leq(w VC) bool {
	for i, x := range v {
		if x == 0 {
			continue
		}
		if i >= len(w) || x > w[i] {
			return false
		}
	}
	return true
}

func (v VC) equal(w VC) bool { return v.Leq(w) && w.Leq(v) }

// Join returns the componentwise maximum (a new slice).
func (v VC) Join(w VC) VC {
	n := max(len(v), len(w))
	out := make(VC, n)
	copy(out, v)
	for i, x := range w {
		out[i] = max(out[i], x)
	}
	return out
}

// Before says a (all of it, up to its End) happens before b (from its
// Begin): program order within a process, vector clocks across processes.
func Before(a, b *Event) bool {
	if a == b {
		return false
	}
	if a.Proc == b.Proc {
		return a.End < b.Begin || a.End == b.Begin && a.Seq < b.Seq
	}
	bc := b.begin()
	return a.Clock.Leq(bc) && !a.Clock.equal(bc)
}

// Ordered says a before b or b before a.
func Ordered(a, b *Event) bool { return Before(a, b) || Before(b, a) }

// Overlap says the two intervals share some instant of real time.
func Overlap(a, b *Event) bool { return a.Begin < b.End && b.Begin < a.End }

// Trace is a run's events, ordered by Begin (then process, then Seq), with
// the process names by index.
type Trace struct {
	Events []*Event
	Procs  []string
	Start  int64 // the run's start, for times shown relative to it
}

// NewTrace sorts the events, numbers them, and fills Name from procs.
func NewTrace(procs []string, evs []*Event) *Trace {
	sort.SliceStable(evs, func(i, j int) bool {
		a, b := evs[i], evs[j]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		if a.Proc != b.Proc {
			return a.Proc < b.Proc
		}
		return a.Seq < b.Seq
	})
	t := &Trace{Events: evs, Procs: procs}
	for i, e := range evs {
		e.ID = i
		if e.Name == "" && e.Proc >= 0 && e.Proc < len(procs) {
			e.Name = procs[e.Proc]
		}
	}
	if len(evs) > 0 {
		t.Start = evs[0].Begin
	}
	return t
}

// Filter selects events; a zero field matches anything.
type Filter struct {
	Proc   string // a process name, or a group name ("worker" matches "worker.2")
	Object string
	Kind   string // exact, or a prefix ending in "." ("shm." matches "shm.get")
	Label  string
}

// Match says whether e is selected.
func (f Filter) Match(e *Event) bool {
	if f.Proc != "" && e.Name != f.Proc && !strings.HasPrefix(e.Name, f.Proc+".") {
		return false
	}
	if f.Object != "" && e.Object != f.Object {
		return false
	}
	if f.Kind != "" && e.Kind != f.Kind && !(strings.HasSuffix(f.Kind, ".") && strings.HasPrefix(e.Kind, f.Kind)) {
		return false
	}
	if f.Label != "" && e.Label != f.Label {
		return false
	}
	return true
}

// Select returns the events f matches, in trace order.
func (t *Trace) Select(f Filter) []*Event {
	var out []*Event
	for _, e := range t.Events {
		if f.Match(e) {
			out = append(out, e)
		}
	}
	return out
}

// Spans returns the ipc.span intervals with this label.
func (t *Trace) Spans(label string) []*Event {
	return t.Select(Filter{Kind: "span", Label: label})
}

// rel formats a time relative to the run's start.
func (t *Trace) rel(ns int64) string {
	return fmt.Sprintf("%.6fs", float64(ns-t.Start)/1e9)
}

// Describe names an event for an explanation: process, what, where, when.
func (t *Trace) Describe(e *Event) string {
	what := e.Kind
	switch {
	case e.Kind == "span":
		what = fmt.Sprintf("span %q", e.Label)
	case e.Kind == "mark":
		what = fmt.Sprintf("mark %q", e.Label)
	case e.Object != "":
		what = fmt.Sprintf("%s %q", e.Kind, e.Object)
	}
	if e.Access != NoAccess {
		what += fmt.Sprintf(" bytes %d..%d", e.Off, e.Off+e.Len-1)
	}
	if e.Sender != "" {
		what += fmt.Sprintf(" (message %s#%d)", e.Sender, e.MsgSeq)
	}
	when := "at " + t.rel(e.Begin)
	if e.End != e.Begin {
		when = fmt.Sprintf("from %s to %s", t.rel(e.Begin), t.rel(e.End))
	}
	where := ""
	if e.Line != "" {
		where = " (" + e.Line + ")"
	}
	return fmt.Sprintf("%s: %s%s %s", e.Name, what, where, when)
}
