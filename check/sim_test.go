package check

// sim builds event lists by hand for the tests, with vector clocks kept
// the way the recording keeps them: each event ticks its process's own
// component; a receive, wait or lock joins the clock its sender, post or
// unlock left.
type sim struct {
	procs  []string
	clocks []VC
	seq    []int
	evs    []*Event
	left   map[string]VC // object -> clock left by the last post/unlock
	msgs   map[msgID]VC
	msgSeq map[int]int
}

func newSim(procs ...string) *sim {
	s := &sim{procs: procs, left: map[string]VC{}, msgs: map[msgID]VC{}, msgSeq: map[int]int{}}
	for range procs {
		s.clocks = append(s.clocks, make(VC, len(procs)))
		s.seq = append(s.seq, 0)
	}
	return s
}

func (s *sim) tick(p int) VC {
	s.clocks[p][p]++
	s.seq[p]++
	return append(VC(nil), s.clocks[p]...)
}

func (s *sim) add(p int, kind string, at int64) *Event {
	e := &Event{Proc: p, Kind: kind, Begin: at, End: at, Clock: s.tick(p), Seq: s.seq[p], Line: "t.lua:" + itoa(int(at))}
	s.evs = append(s.evs, e)
	return e
}

// begin opens a span; end closes it.
func (s *sim) begin(p int, label string, at int64) *Event {
	e := s.add(p, "span", at)
	e.Label = label
	e.BeginClock = e.Clock
	return e
}

func (s *sim) end(e *Event, at int64) *Event {
	e.End = at
	e.Clock = s.tick(e.Proc)
	return e
}

func (s *sim) span(p int, label string, from, to int64) *Event {
	return s.end(s.begin(p, label, from), to)
}

func (s *sim) post(p int, obj string, at int64) *Event {
	e := s.add(p, "sem.post", at)
	e.Object = obj
	s.left[obj] = s.left[obj].Join(e.Clock)
	return e
}

func (s *sim) wait(p int, obj string, at int64) *Event {
	s.clocks[p] = s.clocks[p].Join(s.left[obj])
	e := s.add(p, "sem.wait", at)
	e.Object = obj
	return e
}

func (s *sim) send(p int, obj string, at int64) *Event {
	e := s.add(p, "send", at)
	e.Object = obj
	s.msgSeq[p]++
	e.Sender, e.MsgSeq = s.procs[p], s.msgSeq[p]
	s.msgs[msgID{e.Sender, e.MsgSeq}] = e.Clock
	return e
}

func (s *sim) recv(p int, obj string, sender string, seq int, at int64) *Event {
	s.clocks[p] = s.clocks[p].Join(s.msgs[msgID{sender, seq}])
	e := s.add(p, "receive", at)
	e.Object, e.Sender, e.MsgSeq = obj, sender, seq
	return e
}

func (s *sim) access(p int, kind string, acc Access, obj string, off, n int, at int64) *Event {
	e := s.add(p, kind, at)
	e.Object, e.Access, e.Off, e.Len = obj, acc, off, n
	return e
}

func (s *sim) trace() *Trace { return NewTrace(s.procs, s.evs) }
