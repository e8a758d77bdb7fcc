package trace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// A run in one process: two recorders on their buffers, a message, a
// semaphore post/wait through the board, a stream write/read, then the
// merge. Checks clocks, causes and what each view makes of it.
func TestRecordMerge(t *testing.T) {
	procs := []Proc{{Name: "a"}, {Name: "b"}}
	objs := []Object{{Kind: "semaphore", Name: "s", Decl: "x.lua:1"}, {Kind: "pipe", Name: "#2", Decl: "x.lua:2"}, {Kind: "mailbox", Name: "box", Decl: "x.lua:3"}}
	c, err := NewCollector("x.lua", procs, objs, len(objs), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Spawned(0)
	c.Spawned(1)
	ra := NewRecorder(0, 2, c.Buffer(0), c.Board)
	rb := NewRecorder(1, 2, c.Buffer(1), c.Board)
	ra.Resume()
	rb.Resume()
	if ra.Seq() != 1 || rb.Seq() != 1 {
		t.Fatalf("after spawn: seq %d %d, want 1 1", ra.Seq(), rb.Seq())
	}
	// a sends a message to box
	ra.Tick()
	body := ra.AppendClock(nil)
	body = append(body, "hello"...)
	ra.Emit(&Event{Op: OpSend, Kind: "mailbox", Object: "box", Time: Now(), Msg: &MsgID{0, 1}, Len: 5})
	// b receives it
	t0 := Now()
	cause, rest, err := rb.AcquireMessage(body)
	if err != nil || string(rest) != "hello" || cause != (Ref{0, 2}) {
		t.Fatalf("AcquireMessage: %v %q %v", cause, rest, err)
	}
	rb.Tick()
	rb.Emit(&Event{Op: OpReceive, Kind: "mailbox", Object: "box", Time: t0, End: Now(), Msg: &MsgID{0, 1}, Cause: &cause})
	// b posts s, a waits
	rb.Tick()
	c.Board.Release(0, rb)
	rb.Emit(&Event{Op: OpPost, Kind: "semaphore", Object: "s", Time: Now()})
	cs, ok := c.Board.Acquire(0, ra)
	if !ok || cs != (Ref{1, 3}) {
		t.Fatalf("Acquire: %v %v", cs, ok)
	}
	ra.Tick()
	ra.Emit(&Event{Op: OpWait, Kind: "semaphore", Object: "s", Time: Now(), End: Now() + 1, Cause: &cs})
	// a writes 10 bytes then 5 into the pipe, b reads 12
	for _, n := range []int64{10, 5} {
		ra.Tick()
		off := c.Board.StreamWrite(1, ra, n)
		ra.Emit(&Event{Op: OpWrite, Kind: "pipe", Object: "#2", Time: Now(), Off: off, Len: n})
	}
	off, cw, ok := c.Board.StreamRead(1, rb, 12)
	if !ok || off != 0 || cw != (Ref{0, 4}) {
		t.Fatalf("StreamRead: %d %v %v", off, cw, ok)
	}
	if rb.Clock()[0] != 5 {
		t.Fatalf("a read of bytes from two writes must know both: clock %v", rb.Clock())
	}
	rb.Tick()
	rb.Emit(&Event{Op: OpRead, Kind: "pipe", Object: "#2", Time: Now(), Off: off, Len: 12, Cause: &cw})
	c.Add(0, Event{Op: OpExit, Fields: map[string]any{"code": 0}})

	tr, err := c.Merge()
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Events) != 10 {
		t.Fatalf("%d events, want 10", len(tr.Events))
	}
	for i := range tr.Events {
		e := &tr.Events[i]
		if e.VC.Get(e.P) != e.Seq {
			t.Errorf("%s: clock %v does not match seq", e.Describe(), e.VC)
		}
	}
	if got := len(tr.Edges()); got != 3 {
		t.Errorf("%d edges, want 3 (message, post->wait, write->read)", got)
	}
	var views = map[string]*bytes.Buffer{}
	for _, f := range Formats {
		views[f] = &bytes.Buffer{}
		if err := WriteFormat(views[f], f, tr, Options{}); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	var chrome struct {
		TraceEvents []map[string]any `json:"traceEvents"`
	}
	if err := json.Unmarshal(views[".json"].Bytes(), &chrome); err != nil {
		t.Fatalf(".json: %v", err)
	}
	flows := map[string]int{}
	for _, e := range chrome.TraceEvents {
		if ph := e["ph"].(string); ph == "s" || ph == "f" {
			flows[ph]++
		}
	}
	if flows["s"] != 3 || flows["f"] != 3 {
		t.Errorf(".json flows %v, want 3 of each", flows)
	}
	if n := strings.Count(views[".mmd"].String(), "-)"); n != 1 {
		t.Errorf(".mmd has %d message arrows, want 1:\n%s", n, views[".mmd"])
	}
	back, err := ReadJSONL(views[".jsonl"])
	if err != nil || len(back.Events) != 10 {
		t.Fatalf("jsonl back: %v", err)
	}
	if !strings.Contains(views[".html"].String(), `id="trace-data"`) {
		t.Error(".html has no data")
	}
	var data bytes.Buffer
	draw, _ := htmlData(tr)
	if err := draw(&data); err != nil || !bytes.Contains(data.Bytes(), []byte(`"name":"edgesTo","type":"u8","len":3`)) {
		t.Errorf(".html data: %v, want 3 edges", err)
	}
}

func TestOverflowIsRecorded(t *testing.T) {
	c, err := NewCollector("", []Proc{{Name: "a"}}, nil, 0, 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := NewRecorder(0, 1, c.Buffer(0), c.Board)
	for i := 0; i < 200; i++ {
		r.Record(&Event{Op: OpMark, Label: "filling the buffer up", Time: Now()})
	}
	tr, err := c.Merge()
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Overflow) != 1 || tr.Overflow[0].Dropped == 0 {
		t.Fatalf("overflow %+v, want one entry with dropped events", tr.Overflow)
	}
	last := tr.Events[len(tr.Events)-1]
	if last.Op != OpOverflow || uint64(len(tr.Events)-1)+tr.Overflow[0].Dropped != 200 {
		t.Fatalf("last event %s; %d recorded + %d dropped, want 200", last.Describe(), len(tr.Events)-1, tr.Overflow[0].Dropped)
	}
}

// A record leaves out the strings that repeat the process's previous
// record, and writes times, clocks and message ids as what changed; the
// merge puts them back, in each process's lane apart and
// after a record dropped for want of room (whose strings the next record
// must not count on).
func TestRepeatedStrings(t *testing.T) {
	c, err := NewCollector("", []Proc{{Name: "a"}, {Name: "b"}}, nil, 0, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var want [2][]Event
	for p := 0; p < 2; p++ {
		r := NewRecorder(p, 2, c.Buffer(p), c.Board)
		b := c.Buffer(p)
		record := func(e Event) {
			before, _ := b.Stats()
			r.Record(&e)
			if after, _ := b.Stats(); after > before {
				e.P, e.Proc, e.Seq, e.VC = p, c.Procs[p].Name, r.Seq(), r.Clock().Clone()
				want[p] = append(want[p], e)
			}
		}
		for i := 0; uint64(len(b.data))-atomic.LoadUint64(b.used) > 150; i++ {
			e := Event{Op: OpSend, Kind: "mailbox", Object: "box", Where: "x.lua:3", Type: "job", Peer: "b", Time: int64(1000 + 3*i + i%2),
				Msg: &MsgID{Src: p, Seq: r.Seq() + 1}}
			if i%4 == 0 { // another process's clock: a jump in its component
				r.Acquire(VC{0: uint64(i * 5 * p), 1: uint64(i * 5 * (1 - p))})
			}
			switch {
			case i%7 == 3:
				e.Op, e.Where, e.Peer = OpReceive, "x.lua:9", ""
				e.Cause = &Ref{P: 1 - p, Seq: uint64(i)}
				e.Msg = &MsgID{Src: 1 - p, Seq: uint64(i)}
			case i%7 == 5:
				e.Msg = &MsgID{Src: 1 - p, Seq: 7} // neither this event nor its cause
			case p == 1 && i%5 == 0:
				e.Kind, e.Object = "pipe", "#2"
			case i%13 == 7: // more ops than the encoder keeps
				e.Op = []string{OpPost, OpWait, OpLock, OpUnlock, OpRead, OpWrite, OpMark, OpSpan, OpSelect, OpArrive}[i%10]
				e.Where = fmt.Sprint("x.lua:", i%3)
			}
			record(e)
		}
		// no room for this one; the next, which has its object, fits
		record(Event{Op: OpSend, Kind: "mailbox", Object: "other", Label: strings.Repeat("x", 200), Time: 1 << 40})
		record(Event{Op: OpSend, Kind: "mailbox", Object: "other", Time: 1<<40 + 1})
		if n, dropped := b.Stats(); dropped != 1 || want[p][len(want[p])-1].Time != 1<<40+1 {
			t.Fatalf("process %d: %d recorded, %d dropped; want the long record dropped and the last kept", p, n, dropped)
		}
	}
	tr, err := c.Merge()
	if err != nil {
		t.Fatal(err)
	}
	var got [2][]Event
	for _, e := range tr.Events {
		if e.Op != OpOverflow {
			got[e.P] = append(got[e.P], e)
		}
	}
	for p := 0; p < 2; p++ {
		if len(got[p]) != len(want[p]) {
			t.Fatalf("process %d: %d events merged, %d recorded", p, len(got[p]), len(want[p]))
		}
		for i, w := range want[p] {
			g := got[p][i]
			if g.Seq != w.Seq || g.Op != w.Op || g.Kind != w.Kind || g.Object != w.Object || g.Where != w.Where || g.Type != w.Type || g.Peer != w.Peer || g.Label != w.Label ||
				g.Time != w.Time || !slices.Equal(g.VC, w.VC) || (g.Msg == nil) != (w.Msg == nil) || g.Msg != nil && *g.Msg != *w.Msg || (g.Cause == nil) != (w.Cause == nil) {
				t.Fatalf("process %d, event %d: merged %+v\nrecorded %+v", p, i, g, w)
			}
		}
	}
}

// SpawnLanes: at most --max-procs minus the declared processes, and as
// many as keep the board within SpawnLaneBudget (one more would not).
func TestSpawnLanes(t *testing.T) {
	if k := SpawnLanes(10, 3, 20); k != 17 {
		t.Errorf("SpawnLanes(10, 3, max 20) = %d, want 17", k)
	}
	if k := SpawnLanes(10, 30, 20); k != 0 {
		t.Errorf("SpawnLanes with more declared than the cap = %d, want 0", k)
	}
	k := SpawnLanes(10, 3, 4000)
	if k <= 17 || k >= 4000-3 || BoardBytes(10, 3+k) > SpawnLaneBudget || BoardBytes(10, 3+k+1) <= SpawnLaneBudget {
		t.Errorf("SpawnLanes(10, 3, 4000) = %d: board %d bytes, one more lane %d, budget %d", k, BoardBytes(10, 3+k), BoardBytes(10, 3+k+1), SpawnLaneBudget)
	}
	if k := SpawnLanes(100000, 3, 4000); k != 0 {
		t.Errorf("SpawnLanes with a board already over the budget = %d, want 0", k)
	}
}
