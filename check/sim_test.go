package check

import "github.com/ipcscript/ipcscript/trace"

// sim builds recorded runs by hand for the tests, with vector clocks kept
// as the recording keeps them: each event ticks its process's component
// (VC[p] == Seq); a receive, wait or lock merges the clock its sender,
// post or unlock left. A span is one event, recorded when it ends, as
// ipc.span does.
type sim struct {
	procs  []string
	clocks []VC
	evs    []*trace.Event
	left   map[string]VC // object -> clock left by the posts/unlocks so far
	msgs   map[trace.MsgID]VC
	msgSeq map[int]uint64
}

func newSim(procs ...string) *sim {
	s := &sim{procs: procs, left: map[string]VC{}, msgs: map[trace.MsgID]VC{}, msgSeq: map[int]uint64{}}
	for range procs {
		s.clocks = append(s.clocks, make(VC, len(procs)))
	}
	return s
}

func (s *sim) emit(e *trace.Event) *trace.Event {
	p := e.P
	s.clocks[p][p]++
	e.Seq = s.clocks[p][p]
	e.VC = s.clocks[p].Clone()
	e.Proc = s.procs[p]
	if e.Where == "" {
		e.Where = "t.lua:" + itoa(int(e.Time))
	}
	s.evs = append(s.evs, e)
	return e
}

func (s *sim) add(p int, op string, at int64) *trace.Event {
	return s.emit(&trace.Event{P: p, Op: op, Time: at})
}

func (s *sim) mark(p int, label string, at int64) *trace.Event {
	e := s.add(p, trace.OpMark, at)
	e.Label = label
	return e
}

// openSpan is a span whose end is not recorded yet.
type openSpan struct {
	p     int
	label string
	at    int64
	begin VC
}

func (s *sim) begin(p int, label string, at int64) openSpan {
	return openSpan{p, label, at, s.clocks[p].Clone()}
}

func (s *sim) end(o openSpan, at int64) *trace.Event {
	return s.emit(&trace.Event{P: o.p, Op: trace.OpSpan, Label: o.label, Time: o.at, End: at, BeginVC: o.begin, Where: "t.lua:" + itoa(int(o.at))})
}

func (s *sim) span(p int, label string, from, to int64) *trace.Event {
	return s.end(s.begin(p, label, from), to)
}

func (s *sim) post(p int, obj string, at int64) *trace.Event {
	e := s.emit(&trace.Event{P: p, Op: trace.OpPost, Kind: "semaphore", Object: obj, Time: at})
	s.left[obj] = join(s.left[obj], e.VC)
	return e
}

func (s *sim) wait(p int, obj string, at int64) *trace.Event {
	s.clocks[p] = s.clocks[p].Merge(s.left[obj])
	return s.emit(&trace.Event{P: p, Op: trace.OpWait, Kind: "semaphore", Object: obj, Time: at})
}

func (s *sim) send(p int, obj string, at int64) *trace.Event {
	s.msgSeq[p]++
	id := trace.MsgID{Src: p, Seq: s.msgSeq[p]}
	e := s.emit(&trace.Event{P: p, Op: trace.OpSend, Kind: "mailbox", Object: obj, Time: at, Msg: &id})
	s.msgs[id] = e.VC
	return e
}

func (s *sim) recv(p int, obj string, sender int, seq uint64, at int64) *trace.Event {
	id := trace.MsgID{Src: sender, Seq: seq}
	s.clocks[p] = s.clocks[p].Merge(s.msgs[id])
	return s.emit(&trace.Event{P: p, Op: trace.OpReceive, Kind: "mailbox", Object: obj, Time: at, Msg: &id})
}

func (s *sim) access(p int, op string, obj string, off, n int64, at int64) *trace.Event {
	return s.emit(&trace.Event{P: p, Op: op, Kind: "shm", Object: obj, Off: off, Len: n, Time: at})
}

func (s *sim) trace() *Trace {
	t := &trace.Trace{Version: trace.Version}
	for _, p := range s.procs {
		t.Procs = append(t.Procs, trace.Proc{Name: p})
	}
	for _, e := range s.evs {
		t.Events = append(t.Events, *e)
	}
	return New(t)
}
