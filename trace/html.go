package trace

import (
	"bufio"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
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
//
// The data is in two parts: what the first drawing needs (times,
// processes, operations, edges) and what only hovering and the object
// filter need (sequence numbers, objects, lines, outcomes, labels,
// details, clocks), which the page inflates after it has drawn: the
// first screen of a million-event trace waits for a third of the bytes.
func WriteHTML(w io.Writer, t *Trace) error {
	parts := strings.SplitN(viewerHTML, "{{DATA}}", 3)
	if len(parts) != 3 {
		return fmt.Errorf("trace: viewer template has no data slots")
	}
	title := t.Script
	if title == "" {
		title = "run"
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(strings.Replace(parts[0], "{{TITLE}}", htmlEscape(title), 1))
	draw, detail := htmlData(t)
	for k, blob := range []func(io.Writer) error{draw, detail} {
		if k == 1 {
			bw.WriteString(parts[1])
		}
		if err := writeInline(bw, blob); err != nil {
			return err
		}
	}
	bw.WriteString(parts[2])
	return bw.Flush()
}

// writeInline writes what blob writes gzipped and in base64: a browser
// parses a page of a few MB of base64 at once, where tens of MB of
// inline JSON took it seconds before any script ran (the page inflates
// it with the browser's own DecompressionStream).
func writeInline(bw io.Writer, blob func(io.Writer) error) error {
	b64 := base64.NewEncoder(base64.StdEncoding, bw)
	zw, err := newGzipWriter(b64)
	if err != nil {
		return err
	}
	zb := bufio.NewWriterSize(zw, 1<<16)
	if err := blob(zb); err != nil {
		return err
	}
	if err := zb.Flush(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return b64.Close()
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// htmlData makes the two parts of the page's data (before gzip and
// base64). Each is a u32 length and a JSON header, then columns, each
// starting at a multiple of 8 bytes, little-endian, each in the
// narrowest unsigned type its values fit (u8, u16, u32; f64 beyond), so
// the page maps them as typed arrays without parsing.
//
// The drawing part: the processes, the operations' names, and per event
// its completion time as a delta from the previous event's and its
// duration (ns), its process and its operation; the edges as the
// distance of each edge's destination from the previous one's, and of
// its source back from its destination (sources complete first: the
// order is completion order; "edgesFrom" holds them as they are when
// one does not). The detail part: the string table, the objects, per
// event its sequence number as the distance from its process's previous
// one, and string indices (+1, so that 0 is none); and, unless the
// trace is large, the clocks (one row per event).
func htmlData(t *Trace) (draw, detail func(io.Writer) error) {
	n := len(t.Events)
	full := n <= htmlDetailLimit
	ops, opIDs := []string{}, map[string]uint64{}
	tcol, dcol, pcol, opcol := make([]uint64, n), make([]uint64, n), make([]uint64, n), make([]uint64, n)
	var prev int64
	for i := range t.Events {
		e := &t.Events[i]
		done := e.Done()
		if i == 0 {
			prev = done
		}
		if delta := done - prev; delta > 0 { // a process's own order over completion order: rare, tiny
			tcol[i] = uint64(delta)
			prev = done
		}
		if e.Interval() {
			dcol[i] = uint64(e.End - e.Time)
		}
		pcol[i] = uint64(e.P)
		id, ok := opIDs[e.Op]
		if !ok {
			id = uint64(len(ops))
			opIDs[e.Op] = id
			ops = append(ops, e.Op)
		}
		opcol[i] = id
	}
	edges := t.Edges()
	eto, eback := make([]uint64, len(edges)), make([]uint64, len(edges))
	var efrom []uint64
	last := 0
	for k, ed := range edges {
		eto[k] = uint64(ed.To - last)
		last = ed.To
		if ed.From > ed.To && efrom == nil {
			efrom = make([]uint64, len(edges))
		}
		eback[k] = uint64(max(ed.To-ed.From, 0))
	}
	if efrom != nil {
		for k, ed := range edges {
			efrom[k] = uint64(ed.From)
		}
		eback = nil
	}
	var notes []string
	for _, o := range t.Overflow {
		notes = append(notes, fmt.Sprintf("%s: %d events dropped (buffer full)", o.Proc, o.Dropped))
	}
	if !full {
		notes = append(notes, fmt.Sprintf("%d events: message ids and clocks are left out of the details", n))
	}
	procs := []string{}
	for _, p := range t.Procs {
		procs = append(procs, p.Name)
	}
	draw = func(w io.Writer) error {
		h := map[string]any{"script": t.Script, "procs": procs, "ops": ops, "n": n, "note": strings.Join(notes, "; ")}
		cols := []namedColumn{{"t", tcol}, {"d", dcol}, {"p", pcol}, {"op", opcol}, {"edgesTo", eto}}
		if efrom != nil {
			cols = append(cols, namedColumn{"edgesFrom", efrom})
		} else {
			cols = append(cols, namedColumn{"edgesBack", eback})
		}
		return writeColumns(w, h, cols)
	}
	detail = func(w io.Writer) error {
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
		names := []string{"seq", "obj", "kind", "decl", "where", "out", "label", "info"}
		cols := make([]namedColumn, len(names))
		for k := range cols {
			cols[k] = namedColumn{names[k], make([]uint64, n)}
		}
		lastSeq := make([]uint64, len(t.Procs))
		for i := range t.Events {
			e := &t.Events[i]
			var dseq uint64
			if e.P >= 0 && e.P < len(lastSeq) {
				dseq = e.Seq - lastSeq[e.P] - 1 // 0 but after dropped events
				lastSeq[e.P] = e.Seq
			}
			info := uint64(0)
			if full {
				info = str(eventInfo(e))
			}
			for k, v := range [...]uint64{dseq, str(e.Object), str(e.Kind), str(e.Decl), str(e.Where), str(e.Outcome), str(e.Label), info} {
				cols[k].c[i] = v
			}
		}
		var vcol []uint64
		if full {
			vcol = make([]uint64, 0, n*len(t.Procs))
			for i := range t.Events {
				for p := range t.Procs {
					vcol = append(vcol, t.Events[i].VC.Get(p))
				}
			}
		}
		cols = append(cols, namedColumn{"vc", vcol})
		objects := [][2]uint64{}
		for _, o := range t.Objects {
			objects = append(objects, [2]uint64{str(o.Name), str(o.Kind)})
		}
		return writeColumns(w, map[string]any{"strs": strs, "objects": objects}, cols)
	}
	return draw, detail
}

type namedColumn struct {
	name string
	c    []uint64
}

// writeColumns writes a u32 length, the JSON header h with "cols" added
// (name, type, length of each), then the columns.
func writeColumns(w io.Writer, h map[string]any, cols []namedColumn) error {
	type column struct {
		Name string `json:"name"`
		Type string `json:"type"` // u8 u16 u32 f64
		Len  int    `json:"len"`
	}
	var hc []column
	for _, c := range cols {
		var hi uint64
		for _, x := range c.c {
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
		hc = append(hc, column{Name: c.name, Type: typ, Len: len(c.c)})
	}
	h["cols"] = hc
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, uint32(len(hb)))
	b = append(b, hb...)
	for k, c := range cols {
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
		typ := hc[k].Type
		for _, x := range c.c {
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
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) { // in one order: the page is the same for the same events
		parts = append(parts, fmt.Sprintf("%s=%v", k, e.Fields[k]))
	}
	return strings.Join(parts, ", ")
}
