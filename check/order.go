package check

// HappensBefore checks that every event a selects happens before every
// event b selects.
func (t *Trace) HappensBefore(a, b Filter) *Violation {
	as, bs := t.Select(a), t.Select(b)
	if len(as) == 0 {
		return t.nothing("happens_before", "no event matches "+a.String())
	}
	if len(bs) == 0 {
		return t.nothing("happens_before", "no event matches "+b.String())
	}
	// Program order makes the last a-event of each process enough: if it
	// precedes e, all the process's earlier a-events do too.
	last := map[int]*Event{}
	for _, e := range as {
		if l := last[e.P]; l == nil || e.End > l.End || e.End == l.End && e.Seq > l.Seq {
			last[e.P] = e
		}
	}
	for _, e := range bs {
		for _, l := range last {
			if !Before(l, e) {
				if Before(e, l) {
					return t.violation("happens_before", fmtf("%s happened before %s, the other way round", t.brief(e), t.brief(l)), l, e)
				}
				return t.violation("happens_before", fmtf("nothing ordered %s before %s", t.brief(l), t.brief(e)), l, e)
			}
		}
	}
	return nil
}

// Concurrent checks that the run shows a and b can happen concurrently:
// some event a selects and some event b selects, in different processes,
// are unordered by happens-before. It fails when the run serialized them
// all (every pair ordered), and names one ordered pair.
func (t *Trace) Concurrent(a, b Filter) *Violation {
	as, bs := t.Select(a), t.Select(b)
	var x, y *Event
	for _, e := range as {
		for _, f := range bs {
			if e == f || e.P == f.P {
				continue
			}
			if !Ordered(e, f) {
				return nil
			}
			if x == nil {
				x, y = e, f
			}
		}
	}
	if x == nil {
		return t.nothing("concurrent", fmtf("no pair of events in different processes matches %s and %s", a.String(), b.String()))
	}
	if Before(y, x) {
		x, y = y, x
	}
	return t.violation("concurrent", fmtf("every pair was ordered by happens-before, e.g. %s before %s", t.brief(x), t.brief(y)), x, y)
}

// Progress checks that the process (every instance of a group) spent at
// most share (0..1) of its life blocked in IPC operations.
func (t *Trace) Progress(proc string, share float64) *Violation {
	lives := map[int][2]int64{}
	blocked := map[int]int64{}
	var worst []*Event
	for _, e := range t.Select(Filter{Proc: proc}) {
		l, ok := lives[e.P]
		if !ok {
			l = [2]int64{e.Time, e.End}
		}
		l[0], l[1] = min(l[0], e.Time), max(l[1], e.End)
		lives[e.P] = l
		if e.Blocked {
			blocked[e.P] += e.End - e.Time
		}
	}
	if len(lives) == 0 {
		return t.nothing("progress", fmtf("no event of process %q", proc))
	}
	for p, l := range lives {
		life := l[1] - l[0]
		if life <= 0 {
			continue
		}
		if got := float64(blocked[p]) / float64(life); got > share {
			worst = nil
			for _, e := range t.Events {
				if e.P == p && e.Blocked {
					if len(worst) == 0 || e.End-e.Time > worst[0].End-worst[0].Time {
						worst = []*Event{e}
					}
				}
			}
			return t.violation("progress", fmtf("%s was blocked %.0f%% of its life (%.3fs of %.3fs; at most %.0f%% allowed); its longest wait is below", t.Procs[p], got*100, float64(blocked[p])/1e9, float64(life)/1e9, share*100), worst...)
		}
	}
	return nil
}

// brief is "worker.2's span "crit" (file:line)".
func (t *Trace) brief(e *Event) string {
	s := e.Proc + "'s " + t.shortWhat(e)
	if e.Where != "" {
		s += " (" + e.Where + ")"
	}
	return s
}
