package trace

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"strconv"
	"strings"
)

//go:embed viewer.html
var viewerHTML string

// htmlDetailLimit: above this many events the page leaves out per-event
// details that are unique to each event (message ids, clocks), which would
// make the page too large to open quickly.
const htmlDetailLimit = 200_000

// WriteHTML writes t as one self-contained HTML page (no network access:
// the data and the viewer's script are inline, and the page's content
// security policy forbids fetching anything) that draws the space-time
// diagram on a canvas: a lane per process, a dot per event, an arrow per
// causal edge, a bar per blocked interval; hover for details, wheel to
// zoom, drag to pan, filters by process and object. The root element
// carries data-lanes, data-arrows and data-events once drawn.
func WriteHTML(w io.Writer, t *Trace) error {
	head, tail, ok := strings.Cut(viewerHTML, "{{DATA}}")
	if !ok {
		return fmt.Errorf("trace: viewer template has no data slot")
	}
	title := t.Script
	if title == "" {
		title = "run"
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(strings.Replace(head, "{{TITLE}}", htmlEscape(title), 1))
	if err := writeHTMLData(bw, t); err != nil {
		return err
	}
	bw.WriteString(tail)
	return bw.Flush()
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// writeHTMLData writes the trace as the columns the viewer reads: a string
// table, then per event its process, sequence, completion time (as a delta
// from the previous event's), duration and string indices; the edges as
// pairs of event positions.
func writeHTMLData(bw *bufio.Writer, t *Trace) error {
	strs := []string{}
	ids := map[string]int{}
	str := func(s string) int {
		if s == "" {
			return -1
		}
		if i, ok := ids[s]; ok {
			return i
		}
		ids[s] = len(strs)
		strs = append(strs, s)
		return len(strs) - 1
	}
	n := len(t.Events)
	detail := n <= htmlDetailLimit
	cols := map[string][]int64{}
	names := []string{"p", "seq", "t", "d", "op", "obj", "kind", "decl", "where", "out", "label", "info"}
	for _, c := range names {
		cols[c] = make([]int64, n)
	}
	var prev int64
	for i := range t.Events {
		e := &t.Events[i]
		done := e.Done()
		if i == 0 {
			prev = done
		}
		cols["p"][i] = int64(e.P)
		cols["seq"][i] = int64(e.Seq)
		cols["t"][i] = done - prev
		prev = done
		if e.Interval() {
			cols["d"][i] = e.End - e.Time
		}
		cols["op"][i] = int64(str(e.Op))
		cols["obj"][i] = int64(str(e.Object))
		cols["kind"][i] = int64(str(e.Kind))
		cols["decl"][i] = int64(str(e.Decl))
		cols["where"][i] = int64(str(e.Where))
		cols["out"][i] = int64(str(e.Outcome))
		cols["label"][i] = int64(str(e.Label))
		cols["info"][i] = -1
		if detail {
			cols["info"][i] = int64(str(eventInfo(e)))
		}
	}
	var b []byte
	b = append(b, `{"script":`...)
	b = appendString(b, t.Script)
	b = append(b, `,"procs":[`...)
	for i, p := range t.Procs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, p.Name)
	}
	b = append(b, `],"objects":[`...)
	for i, o := range t.Objects {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(str(o.Name)), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(str(o.Kind)), 10)
		b = append(b, ']')
	}
	b = append(b, ']')
	var notes []string
	for _, o := range t.Overflow {
		notes = append(notes, fmt.Sprintf("%s: %d events dropped (buffer full)", o.Proc, o.Dropped))
	}
	if !detail {
		notes = append(notes, fmt.Sprintf("%d events: message ids and clocks are left out of the details", n))
	}
	if len(notes) > 0 {
		b = append(b, `,"note":`...)
		b = appendString(b, strings.Join(notes, "; "))
	}
	flush := func() error {
		_, err := bw.Write(b)
		b = b[:0]
		return err
	}
	b = append(b, `,"ev":{`...)
	for k, c := range names {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, c...)
		b = append(b, `":[`...)
		for i, x := range cols[c] {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, x, 10)
			if len(b) > 1<<15 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		b = append(b, ']')
	}
	b = append(b, `},"edges":[`...)
	for k, ed := range t.Edges() {
		if k > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(ed.From), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(ed.To), 10)
		if len(b) > 1<<15 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	b = append(b, ']')
	if detail {
		b = append(b, `,"vc":[`...)
		for i := range t.Events {
			for p := range t.Procs {
				if i > 0 || p > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendUint(b, t.Events[i].VC.Get(p), 10)
			}
			if len(b) > 1<<15 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"strs":[`...)
	for i, s := range strs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
		if len(b) > 1<<15 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	b = append(b, "]}"...)
	return flush()
}

// eventInfo is the hover line of what is particular to one event.
func eventInfo(e *Event) string {
	var parts []string
	if e.Msg != nil {
		parts = append(parts, fmt.Sprintf("message %d:%d", e.Msg.Src, e.Msg.Seq))
	}
	if e.Type != "" {
		parts = append(parts, "type "+e.Type)
	}
	if e.Peer != "" {
		parts = append(parts, "peer "+e.Peer)
	}
	if e.Off != 0 || e.Kind == "shm" {
		parts = append(parts, fmt.Sprintf("offset %d", e.Off))
	}
	if e.Len != 0 {
		parts = append(parts, fmt.Sprintf("%d bytes", e.Len))
	}
	if e.Cause != nil {
		parts = append(parts, fmt.Sprintf("after #%d of process %d", e.Cause.Seq, e.Cause.P))
	}
	for k, v := range e.Fields {
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	return strings.Join(parts, ", ")
}
