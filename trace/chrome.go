package trace

import (
	"bufio"
	"io"
	"strconv"
)

// WriteChrome writes t in the Chrome trace event format (JSON object form),
// which Perfetto UI and chrome://tracing open: one track per process
// (named, sorted in declaration order), a complete slice ("X") for each
// interval and for each end of a causal edge, an instant ("i") for the
// other events, and a flow ("s" then "f") for every causal edge.
func WriteChrome(w io.Writer, t *Trace) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var t0 int64
	for i := range t.Events {
		if i == 0 || t.Events[i].Time < t0 {
			t0 = t.Events[i].Time
		}
	}
	edges := t.Edges()
	endpoint := make([]bool, len(t.Events))
	for _, e := range edges {
		endpoint[e.From], endpoint[e.To] = true, true
	}
	us := func(b []byte, ns int64) []byte { // microseconds with ns precision
		return strconv.AppendFloat(b, float64(ns-t0)/1000, 'f', 3, 64)
	}
	b := []byte(`{"displayTimeUnit":"ns","otherData":{"generator":"ipcscript","script":`)
	b = appendString(b, t.Script)
	b = append(b, `},"traceEvents":[`...)
	first := true
	sep := func() {
		if !first {
			b = append(b, ",\n"...)
		}
		first = false
	}
	for i, p := range t.Procs {
		sep()
		b = append(b, `{"ph":"M","name":"process_name","pid":`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `,"args":{"name":`...)
		b = appendString(b, p.Name)
		b = append(b, `}},`...)
		b = append(b, "\n"...)
		b = append(b, `{"ph":"M","name":"process_sort_index","pid":`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `,"args":{"sort_index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `}},`...)
		b = append(b, "\n"...)
		b = append(b, `{"ph":"M","name":"thread_name","pid":`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `,"tid":1,"args":{"name":`...)
		b = appendString(b, p.Name)
		b = append(b, `}}`...)
	}
	for i := range t.Events {
		e := &t.Events[i]
		sep()
		b = append(b, `{"name":`...)
		b = appendString(b, chromeName(e))
		b = append(b, `,"cat":`...)
		cat := e.Kind
		if cat == "" {
			cat = "process"
		}
		b = appendString(b, cat)
		if e.Interval() || endpoint[i] {
			b = append(b, `,"ph":"X","dur":`...)
			d := e.End - e.Time
			if d < 1000 {
				d = 1000 // a slice of at least 1 us, so arrows have something to bind to
			}
			b = strconv.AppendFloat(b, float64(d)/1000, 'f', 3, 64)
		} else {
			b = append(b, `,"ph":"i","s":"t"`...)
		}
		b = append(b, `,"ts":`...)
		b = us(b, e.Time)
		b = append(b, `,"pid":`...)
		b = strconv.AppendInt(b, int64(e.P+1), 10)
		b = append(b, `,"tid":1,"args":`...)
		b = appendArgs(b, e)
		b = append(b, '}')
		if len(b) > 1<<15 {
			if _, err := bw.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	for n, ed := range edges {
		from, to := &t.Events[ed.From], &t.Events[ed.To]
		name := from.Op + "→" + to.Op
		sep()
		b = append(b, `{"ph":"s","cat":"causal","name":`...)
		b = appendString(b, name)
		b = append(b, `,"id":`...)
		b = strconv.AppendInt(b, int64(n+1), 10)
		b = append(b, `,"pid":`...)
		b = strconv.AppendInt(b, int64(from.P+1), 10)
		b = append(b, `,"tid":1,"ts":`...)
		b = us(b, from.Time)
		b = append(b, "},\n"...)
		b = append(b, `{"ph":"f","bp":"e","cat":"causal","name":`...)
		b = appendString(b, name)
		b = append(b, `,"id":`...)
		b = strconv.AppendInt(b, int64(n+1), 10)
		b = append(b, `,"pid":`...)
		b = strconv.AppendInt(b, int64(to.P+1), 10)
		b = append(b, `,"tid":1,"ts":`...)
		// the arrow ends where the wait ended (inside the slice)
		end := to.Time
		if to.Interval() {
			end = to.End - 1
		}
		b = us(b, end)
		b = append(b, '}')
		if len(b) > 1<<15 {
			if _, err := bw.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, "\n]}\n"...)
	if _, err := bw.Write(b); err != nil {
		return err
	}
	return bw.Flush()
}

func chromeName(e *Event) string {
	s := e.Op
	if e.Object != "" {
		s += " " + e.Object
	} else if e.Peer != "" {
		s += " " + e.Peer
	}
	if e.Label != "" {
		s += " " + e.Label
	}
	return s
}

// appendArgs writes the event's details as the slice's args.
func appendArgs(b []byte, e *Event) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = optString(b, "kind", e.Kind)
	b = optString(b, "object", e.Object)
	b = optString(b, "decl", e.Decl)
	b = optString(b, "where", e.Where)
	b = optString(b, "outcome", e.Outcome)
	b = optString(b, "type", e.Type)
	b = optString(b, "peer", e.Peer)
	if e.Msg != nil {
		b = append(b, `,"msg":`...)
		b = appendString(b, strconv.Itoa(e.Msg.Src)+":"+strconv.FormatUint(e.Msg.Seq, 10))
	}
	if e.Len != 0 {
		b = append(b, `,"len":`...)
		b = strconv.AppendInt(b, e.Len, 10)
	}
	if e.Off != 0 {
		b = append(b, `,"off":`...)
		b = strconv.AppendInt(b, e.Off, 10)
	}
	b = append(b, `,"vc":"`...)
	for i, x := range e.VC {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendUint(b, x, 10)
	}
	return append(b, `"}`...)
}
