// Package check judges a recorded run: properties over its events
// (exclusive, bounded, each_once, fifo, happens_before, concurrent,
// progress, linearizable) and a race detector for shared memory.
//
// It reads a trace.Trace. Each trace event is seen through Event, which
// adds what the checks need and the recording does not store: the vector
// clock at an interval's begin and at its end (a span is one recorded
// event; what the process did inside it is in the events between), how it
// touched shared memory, and whether it was time spent blocked. A check
// returns nil when the property holds, or a *Violation that names the
// events that break it and the smallest window of the trace that shows
// it, as Mermaid text.
package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ipcscript/ipcscript/trace"
)

// VC is the trace's vector clock.
type VC = trace.VC

// Access says how an event touched shared memory.
type Access int

const (
	NoAccess Access = iota
	Read            // mem:get, mem:read
	Write           // mem:set, mem:write
	Atomic          // mem:add, mem:cas: atomic read-modify-write; synchronizes
)

// Event is a trace event as the checks see it (the recorded event is
// shared, not copied, and never changed).
type Event struct {
	*trace.Event
	ID  int   // position in Trace.Events (ordered by Time)
	End int64 // the recorded End, or Time for an instant

	// Clock is the process's clock at End (for a span: after everything
	// it did inside); BeginClock at Time (nil: the same as Clock).
	Clock      VC
	BeginClock VC

	Access  Access
	Blocked bool // a blocking operation: Time..End was spent waiting
}

// IsSync says whether the event is a synchronization a race report names
// as "the last synchronization" of its side.
func (e *Event) IsSync() bool {
	if e.Access == Atomic {
		return true
	}
	if e.Access != NoAccess {
		return false
	}
	switch e.Op {
	case trace.OpSend, trace.OpReceive, trace.OpSelect, trace.OpWait, trace.OpPost,
		trace.OpLock, trace.OpUnlock, trace.OpRead, trace.OpWrite, trace.OpAccept, trace.OpConnect,
		trace.OpSignal, trace.OpBroadcast, trace.OpArrive, trace.OpRendezvous:
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

// Before says a (all of it, up to its End) happens before b (from its
// Time): program order within a process, vector clocks across processes
// (b's clock at its begin knows a's last tick).
func Before(a, b *Event) bool {
	if a == b {
		return false
	}
	if a.P == b.P {
		return a.End < b.Time || a.End == b.Time && a.Seq < b.Seq
	}
	own := a.Clock.Get(a.P)
	return own > 0 && own <= b.begin().Get(a.P)
}

// Ordered says a before b or b before a.
func Ordered(a, b *Event) bool { return Before(a, b) || Before(b, a) }

// Overlap says the two intervals share some instant of real time.
func Overlap(a, b *Event) bool { return a.Time < b.End && b.Time < a.End }

// Trace is a run's events as the checks see them, ordered by Time (then
// process, then Seq).
type Trace struct {
	Events []*Event
	Procs  []string
	Start  int64 // the run's start, for times shown relative to it
	// Uncarried: the processes spawned beyond the clock board's lanes
	// (trace.Uncarried), whose own clock components travel with
	// messages only.
	Uncarried map[int]bool
}

// New makes the checks' view of a recorded run.
func New(t *trace.Trace) *Trace {
	procs := make([]string, len(t.Procs))
	for i, p := range t.Procs {
		procs[i] = p.Name
	}
	evs := make([]*Event, len(t.Events))
	all := make([]Event, len(t.Events)) // one allocation, not one per event
	for i := range t.Events {
		e := &all[i]
		e.Event = &t.Events[i]
		e.Clock = e.VC
		e.End = max(e.Event.End, e.Time)
		e.Access = accessOf(e.Event)
		e.Blocked = e.End > e.Time && e.Op != trace.OpSpan
		evs[i] = e
	}
	intervalClocks(evs)
	for _, e := range evs {
		if e.Event.BeginVC != nil {
			e.BeginClock = e.Event.BeginVC // recorded: better than derived
		}
	}
	ct := newTrace(procs, evs)
	if u := t.Uncarried; u != nil {
		ct.Uncarried = map[int]bool{}
		for _, name := range u.Procs {
			if i := t.ProcIndex(name); i >= 0 {
				ct.Uncarried[i] = true
			}
		}
	}
	return ct
}

// accessOf classifies shared memory operations (ipc.shm, and the
// variables of ipc.shared, which live in shared memory too).
func accessOf(e *trace.Event) Access {
	if e.Kind != "shm" && e.Kind != "shared" {
		return NoAccess
	}
	switch e.Op {
	case trace.OpGet, trace.OpRead:
		return Read
	case trace.OpSet, trace.OpWrite:
		return Write
	case trace.OpAdd, trace.OpCAS, "swap", "max", "min":
		return Atomic
	}
	return NoAccess
}

// intervalClocks gives each interval its clock at begin and at end. The
// recording keeps one clock per event; the process's clock when the
// interval began is the clock of its latest event that ended before (or
// nothing: zero), and when it ended, the later of the interval's own and
// that of the last event inside it.
func intervalClocks(evs []*Event) {
	byProc := map[int][]*Event{}
	for _, e := range evs {
		byProc[e.P] = append(byProc[e.P], e)
	}
	for _, es := range byProc {
		sort.SliceStable(es, func(i, j int) bool { return es[i].Seq < es[j].Seq })
		for i, e := range es {
			if e.End == e.Time {
				continue
			}
			e.BeginClock = VC{}
			for j := i - 1; j >= 0; j-- {
				if es[j].End <= e.Time {
					e.BeginClock = es[j].VC
					break
				}
			}
			end := e.VC
			for j := i + 1; j < len(es) && es[j].Time >= e.Time && es[j].End <= e.End; j++ {
				if es[j].VC.Get(e.P) > end.Get(e.P) {
					end = es[j].VC
				}
			}
			e.Clock = end
		}
	}
}

func newTrace(procs []string, evs []*Event) *Trace {
	sort.SliceStable(evs, func(i, j int) bool {
		a, b := evs[i], evs[j]
		if a.Time != b.Time {
			return a.Time < b.Time
		}
		if a.P != b.P {
			return a.P < b.P
		}
		return a.Seq < b.Seq
	})
	t := &Trace{Events: evs, Procs: procs}
	for i, e := range evs {
		e.ID = i
	}
	if len(evs) > 0 {
		t.Start = evs[0].Time
	}
	return t
}

// Filter selects events; a zero field matches anything.
type Filter struct {
	Proc   string // a process name, or a group name ("worker" matches "worker.2")
	Object string
	Kind   string // an operation ("send", "span") or an object kind ("mailbox")
	Label  string
}

// String shows the filter as a script would write it.
func (f Filter) String() string {
	var parts []string
	for _, kv := range [][2]string{{"proc", f.Proc}, {"object", f.Object}, {"kind", f.Kind}, {"label", f.Label}} {
		if kv[1] != "" {
			parts = append(parts, fmt.Sprintf("%s = %q", kv[0], kv[1]))
		}
	}
	if len(parts) == 1 && f.Label != "" {
		return fmt.Sprintf("%q", f.Label)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Match says whether e is selected.
func (f Filter) Match(e *Event) bool {
	if f.Proc != "" && e.Proc != f.Proc && !strings.HasPrefix(e.Proc, f.Proc+".") {
		return false
	}
	if f.Object != "" && e.Object != f.Object {
		return false
	}
	if f.Kind != "" && e.Op != f.Kind && e.Kind != f.Kind {
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
	return t.Select(Filter{Kind: trace.OpSpan, Label: label})
}

// rel formats a time relative to the run's start.
func (t *Trace) rel(ns int64) string {
	return fmt.Sprintf("%.6fs", float64(ns-t.Start)/1e9)
}

// procName is the name of process p.
func (t *Trace) procName(p int) string {
	if p >= 0 && p < len(t.Procs) {
		return t.Procs[p]
	}
	return fmt.Sprint(p)
}

// Describe names an event for an explanation: process, what, where, when.
func (t *Trace) Describe(e *Event) string {
	what := e.Op
	switch {
	case e.Op == trace.OpSpan || e.Op == trace.OpMark:
		what = fmt.Sprintf("%s %q", e.Op, e.Label)
	case e.Object != "":
		what = fmt.Sprintf("%s %s %q", e.Op, e.Kind, e.Object)
	}
	if e.Access != NoAccess {
		what += fmt.Sprintf(" bytes %d..%d", e.Off, e.Off+e.Len-1)
	}
	if e.Msg != nil {
		what += fmt.Sprintf(" (message %s no. %d)", t.procName(e.Msg.Src), e.Msg.Seq)
	}
	if e.Outcome != "" {
		what += " -> " + e.Outcome
	}
	when := "at " + t.rel(e.Time)
	if e.End != e.Time {
		when = fmt.Sprintf("from %s to %s", t.rel(e.Time), t.rel(e.End))
	}
	where := ""
	if e.Where != "" {
		where = " (" + e.Where + ")"
	}
	return fmt.Sprintf("%s: %s%s %s", e.Proc, what, where, when)
}
