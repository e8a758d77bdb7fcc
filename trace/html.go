package trace

import (
	"bufio"
	"compress/gzip"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
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
	// The data goes in gzipped and in base64: a browser parses a page of
	// a few MB of base64 at once, where tens of MB of inline JSON took it
	// seconds before any script ran (the page inflates it with the
	// browser's own DecompressionStream).
	b64 := base64.NewEncoder(base64.StdEncoding, bw)
	zw, _ := gzip.NewWriterLevel(b64, gzip.BestSpeed)
	zb := bufio.NewWriterSize(zw, 1<<16)
	if err := writeHTMLData(zb, t); err != nil {
		return err
	}
	if err := zb.Flush(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := b64.Close(); err != nil {
		return err
	}
	bw.WriteString(tail)
	return bw.Flush()
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// writeHTMLData writes the trace as the viewer reads it (before gzip and
// base64): a u32 length and a JSON header (processes, objects, the string
// table, counts, the columns), then the columns, each starting at a
// multiple of 8 bytes, little-endian, each in the narrowest unsigned type
// its values fit (u8, u16, u32; f64 for times beyond 4 s) so the page maps
// them as typed arrays without parsing and inflates as few bytes as it
// can: per event its completion time as a delta from the previous event's
// and its duration (ns), its process, sequence, and string indices (+1, so
// that 0 is none); the edges as pairs of event positions; and, unless the
// trace is large, the clocks (one row per event).
func writeHTMLData(w io.Writer, t *Trace) error {
	strs := []string{}
	ids := map[string]int{}
	str := func(s string) uint64 {
		if s == "" {
			return 0
		}
		if i, ok := ids[s]; ok {
			return uint64(i) + 1
		}
		ids[s] = len(strs)
		strs = append(strs, s)
		return uint64(len(strs))
	}
	n := len(t.Events)
	detail := n <= htmlDetailLimit
	names := []string{"t", "d", "p", "seq", "op", "obj", "kind", "decl", "where", "out", "label", "info"}
	cols := make([][]uint64, len(names))
	for k := range cols {
		cols[k] = make([]uint64, n)
	}
	var prev int64
	for i := range t.Events {
		e := &t.Events[i]
		done := e.Done()
		if i == 0 {
			prev = done
		}
		delta := done - prev
		if delta < 0 { // a process's own order over completion order: rare, tiny
			delta = 0
		} else {
			prev = done
		}
		var dur uint64
		if e.Interval() {
			dur = uint64(e.End - e.Time)
		}
		info := uint64(0)
		if detail {
			info = str(eventInfo(e))
		}
		for k, v := range [...]uint64{uint64(delta), dur, uint64(e.P), e.Seq, str(e.Op), str(e.Object), str(e.Kind), str(e.Decl), str(e.Where), str(e.Outcome), str(e.Label), info} {
			cols[k][i] = v
		}
	}
	edges := t.Edges()
	ecol := make([]uint64, 0, 2*len(edges))
	for _, ed := range edges {
		ecol = append(ecol, uint64(ed.From), uint64(ed.To))
	}
	var vcol []uint64
	if detail {
		vcol = make([]uint64, 0, n*len(t.Procs))
		for i := range t.Events {
			for p := range t.Procs {
				vcol = append(vcol, t.Events[i].VC.Get(p))
			}
		}
	}
	var notes []string
	for _, o := range t.Overflow {
		notes = append(notes, fmt.Sprintf("%s: %d events dropped (buffer full)", o.Proc, o.Dropped))
	}
	if !detail {
		notes = append(notes, fmt.Sprintf("%d events: message ids and clocks are left out of the details", n))
	}
	type column struct {
		Name string `json:"name"`
		Type string `json:"type"` // u8 u16 u32 f64
		Len  int    `json:"len"`
	}
	type header struct {
		Script  string      `json:"script"`
		Procs   []string    `json:"procs"`
		Objects [][2]uint64 `json:"objects"`
		Note    string      `json:"note,omitempty"`
		Strs    []string    `json:"strs"`
		N       int         `json:"n"`
		Cols    []column    `json:"cols"`
	}
	all := append(cols, ecol, vcol)
	allNames := append(names, "edges", "vc")
	h := header{Script: t.Script, Note: strings.Join(notes, "; "), N: n}
	for _, p := range t.Procs {
		h.Procs = append(h.Procs, p.Name)
	}
	for _, o := range t.Objects {
		h.Objects = append(h.Objects, [2]uint64{str(o.Name), str(o.Kind)})
	}
	h.Strs = strs
	for k, c := range all {
		var hi uint64
		for _, x := range c {
			hi = max(hi, x)
		}
		typ := "f64"
		switch {
		case hi < 1<<8:
			typ = "u8"
		case hi < 1<<16:
			typ = "u16"
		case hi < 1<<32:
			typ = "u32"
		}
		h.Cols = append(h.Cols, column{Name: allNames[k], Type: typ, Len: len(c)})
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, uint32(len(hb)))
	b = append(b, hb...)
	for k, c := range all {
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
		typ := h.Cols[k].Type
		for _, x := range c {
			switch typ {
			case "u8":
				b = append(b, byte(x))
			case "u16":
				b = binary.LittleEndian.AppendUint16(b, uint16(x))
			case "u32":
				b = binary.LittleEndian.AppendUint32(b, uint32(x))
			default:
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(x)))
			}
			if len(b) >= 1<<15 && len(b)%8 == 0 {
				if _, err := w.Write(b); err != nil {
					return err
				}
				b = b[:0]
			}
		}
	}
	_, err = w.Write(b)
	return err
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
