package check

import (
	"sort"
	"strings"

	"github.com/ipcscript/ipcscript/trace"
)

// maxWindow bounds the events a window shows.
const maxWindow = 40

// Window renders the smallest window of the trace that shows the key
// events: the processes they belong to (and those that sent them messages
// in the window), from the first key event's begin to the last one's end,
// with the synchronization, spans and marks in between, as a Mermaid
// sequenceDiagram. At most limit events are shown: the key events always,
// then the ones closest to them in time. The key events are marked "!!".
func (t *Trace) Window(keys []*Event, limit int) string {
	if len(keys) == 0 {
		return ""
	}
	lo, hi := keys[0].Time, keys[0].End
	procs := map[int]bool{}
	key := map[*Event]bool{}
	for _, e := range keys {
		lo, hi = min(lo, e.Time), max(hi, e.End)
		procs[e.P] = true
		key[e] = true
	}
	// Messages received in the window by a process shown bring their
	// sender in, so the arrow that ordered things is visible.
	sends := map[trace.MsgID]*Event{}
	for _, e := range t.Events {
		if e.Op == trace.OpSend && e.Msg != nil {
			sends[*e.Msg] = e
		}
	}
	for _, e := range t.Events {
		if e.Time > hi || e.End < lo || !procs[e.P] || !isReceive(e) {
			continue
		}
		if s := sends[*e.Msg]; s != nil && s.End >= lo {
			procs[s.P] = true
		}
	}
	var cand []*Event
	for _, e := range t.Events {
		if key[e] {
			continue
		}
		if e.Time > hi || e.End < lo || !procs[e.P] || !shown(e) {
			continue
		}
		cand = append(cand, e)
	}
	// Keep the candidates closest in time to a key event.
	dist := func(e *Event) int64 {
		d := int64(1) << 62
		for _, k := range keys {
			switch {
			case e.End < k.Time:
				d = min(d, k.Time-e.End)
			case e.Time > k.End:
				d = min(d, e.Time-k.End)
			default:
				d = 0
			}
		}
		return d
	}
	if room := limit - len(keys); len(cand) > room {
		sort.SliceStable(cand, func(i, j int) bool { return dist(cand[i]) < dist(cand[j]) })
		cand = cand[:max(room, 0)]
	}
	evs := append(append([]*Event(nil), keys...), cand...)
	in := map[*Event]bool{}
	for _, e := range evs {
		in[e] = true
	}

	// Points in time: an interval gives two (begin, end), an instant one.
	type point struct {
		at    int64
		order int
		text  string
	}
	var pts []point
	ids := map[int]string{}
	var order []int
	for p := range procs {
		order = append(order, p)
	}
	sort.Ints(order)
	for i, p := range order {
		ids[p] = "P" + itoa(i)
	}
	recvOf := map[trace.MsgID]*Event{}
	for _, e := range evs {
		if isReceive(e) {
			recvOf[*e.Msg] = e
		}
	}
	for _, e := range evs {
		mark := ""
		if key[e] {
			mark = "!! "
		}
		who := ids[e.P]
		what := mermaidText(t.shortWhat(e))
		at := mermaidText(t.rel(e.Time))
		switch {
		case e.Op == trace.OpSend && e.Msg != nil && recvOf[*e.Msg] != nil:
			r := recvOf[*e.Msg]
			pts = append(pts, point{e.Time, e.ID, who + "-)" + ids[r.P] + ": " + mark + what + " at " + at})
		case isReceive(e) && in[sends[*e.Msg]]:
			if key[e] {
				pts = append(pts, point{e.Time, e.ID, "Note over " + who + ": !! " + what + " at " + at})
			}
		case e.End != e.Time:
			pts = append(pts, point{e.Time, e.ID, "Note over " + who + ": " + mark + what + " begins at " + at + lineOf(e)})
			pts = append(pts, point{e.End, e.ID, "Note over " + who + ": " + mark + what + " ends at " + mermaidText(t.rel(e.End))})
		default:
			pts = append(pts, point{e.Time, e.ID, "Note over " + who + ": " + mark + what + " at " + at + lineOf(e)})
		}
	}
	sort.SliceStable(pts, func(i, j int) bool {
		if pts[i].at != pts[j].at {
			return pts[i].at < pts[j].at
		}
		return pts[i].order < pts[j].order
	})
	var b strings.Builder
	b.WriteString("sequenceDiagram\n")
	for _, p := range order {
		name := t.procName(p)
		b.WriteString("    participant " + ids[p] + " as " + mermaidText(name) + "\n")
	}
	for _, pt := range pts {
		b.WriteString("    " + pt.text + "\n")
	}
	return b.String()
}

// shown says whether an event is worth a line in a window.
func shown(e *Event) bool {
	return e.Op == trace.OpSpan || e.Op == trace.OpMark || e.IsSync() || e.Access != NoAccess || e.Blocked
}

func (t *Trace) shortWhat(e *Event) string {
	switch {
	case e.Op == trace.OpSpan || e.Op == trace.OpMark:
		return e.Op + " " + e.Label
	case e.Msg != nil:
		return e.Op + " " + e.Object + " " + t.msgName(*e.Msg)
	}
	s := e.Op
	if e.Object != "" {
		s += " " + e.Object
	}
	if e.Access != NoAccess {
		s += fmtf(" [%d..%d]", e.Off, e.Off+e.Len-1)
	}
	if e.Outcome != "" {
		s += " -> " + e.Outcome
	}
	return s
}

func lineOf(e *Event) string {
	if e.Where == "" {
		return ""
	}
	return " (" + mermaidText(e.Where) + ")"
}

// mermaidText keeps a label from ending the statement or starting an
// entity code: Mermaid reads ";" and "#" specially.
func mermaidText(s string) string {
	return strings.NewReplacer(";", ",", "#", "no. ", "\n", " ").Replace(s)
}

func itoa(i int) string { return fmtf("%d", i) }
