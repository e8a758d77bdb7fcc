package check

import (
	"sort"
	"strings"
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
	lo, hi := keys[0].Begin, keys[0].End
	procs := map[int]bool{}
	key := map[*Event]bool{}
	for _, e := range keys {
		lo, hi = min(lo, e.Begin), max(hi, e.End)
		procs[e.Proc] = true
		key[e] = true
	}
	// Messages received in the window by a process shown bring their
	// sender in, so the arrow that ordered things is visible.
	sends := map[msgID]*Event{}
	for _, e := range t.Events {
		if e.Kind == "send" && e.Sender != "" {
			sends[msgID{e.Sender, e.MsgSeq}] = e
		}
	}
	for _, e := range t.Events {
		if e.Begin > hi || e.End < lo || !procs[e.Proc] || e.Kind != "receive" {
			continue
		}
		if s := sends[msgID{e.Sender, e.MsgSeq}]; s != nil && s.End >= lo {
			procs[s.Proc] = true
		}
	}
	var cand []*Event
	for _, e := range t.Events {
		if key[e] {
			continue
		}
		if e.Begin > hi || e.End < lo || !procs[e.Proc] || !shown(e) {
			continue
		}
		cand = append(cand, e)
	}
	// Keep the candidates closest in time to a key event.
	dist := func(e *Event) int64 {
		d := int64(1) << 62
		for _, k := range keys {
			switch {
			case e.End < k.Begin:
				d = min(d, k.Begin-e.End)
			case e.Begin > k.End:
				d = min(d, e.Begin-k.End)
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
	recvOf := map[msgID]*Event{}
	for _, e := range evs {
		if e.Kind == "receive" {
			recvOf[msgID{e.Sender, e.MsgSeq}] = e
		}
	}
	for _, e := range evs {
		mark := ""
		if key[e] {
			mark = "!! "
		}
		who := ids[e.Proc]
		what := mermaidText(shortWhat(e))
		at := mermaidText(t.rel(e.Begin))
		switch {
		case e.Kind == "send" && recvOf[msgID{e.Sender, e.MsgSeq}] != nil:
			r := recvOf[msgID{e.Sender, e.MsgSeq}]
			pts = append(pts, point{e.Begin, e.ID, who + "-)" + ids[r.Proc] + ": " + mark + what + " at " + at})
		case e.Kind == "receive" && in[sends[msgID{e.Sender, e.MsgSeq}]]:
			if key[e] {
				pts = append(pts, point{e.Begin, e.ID, "Note over " + who + ": !! " + what + " at " + at})
			}
		case e.End != e.Begin:
			pts = append(pts, point{e.Begin, e.ID, "Note over " + who + ": " + mark + what + " begins at " + at + lineOf(e)})
			pts = append(pts, point{e.End, e.ID, "Note over " + who + ": " + mark + what + " ends at " + mermaidText(t.rel(e.End))})
		default:
			pts = append(pts, point{e.Begin, e.ID, "Note over " + who + ": " + mark + what + " at " + at + lineOf(e)})
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
		name := itoa(p)
		if p >= 0 && p < len(t.Procs) {
			name = t.Procs[p]
		}
		b.WriteString("    participant " + ids[p] + " as " + mermaidText(name) + "\n")
	}
	for _, pt := range pts {
		b.WriteString("    " + pt.text + "\n")
	}
	return b.String()
}

// shown says whether an event is worth a line in a window.
func shown(e *Event) bool {
	return e.Kind == "span" || e.Kind == "mark" || e.IsSync() || e.Access != NoAccess || e.Blocked
}

func shortWhat(e *Event) string {
	switch e.Kind {
	case "span", "mark":
		return e.Kind + " " + e.Label
	case "send", "receive":
		return e.Kind + " " + e.Object + " " + e.Sender + " no. " + itoa(e.MsgSeq)
	}
	s := e.Kind
	if e.Object != "" {
		s += " " + e.Object
	}
	if e.Access != NoAccess {
		s += " [" + itoa(e.Off) + ".." + itoa(e.Off+e.Len-1) + "]"
	}
	return s
}

func lineOf(e *Event) string {
	if e.Line == "" {
		return ""
	}
	return " (" + mermaidText(e.Line) + ")"
}

// mermaidText keeps a label from ending the statement or starting an
// entity code: Mermaid reads ";" and "#" specially.
func mermaidText(s string) string {
	return strings.NewReplacer(";", ",", "#", "no. ", "\n", " ").Replace(s)
}

func itoa(i int) string { return fmtf("%d", i) }

type msgID struct {
	sender string
	seq    int
}
