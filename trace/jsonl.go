package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// The .jsonl form: the first line is the header (the Trace without its
// events, plus "format":"ipcscript-trace"); each further line is one Event.
// See docs/TRACING.md for the fields.

const formatName = "ipcscript-trace"

type header struct {
	Format string `json:"format"`
	Trace
}

// WriteJSONL writes t in the canonical form. It is written by hand rather
// than through encoding/json: a million events take well under a second.
func WriteJSONL(w io.Writer, t *Trace) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	h := header{Format: formatName, Trace: *t}
	h.Version = Version
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	bw.Write(hb)
	bw.WriteByte('\n')
	var b []byte
	qc := new(quoteCache)
	for i := range t.Events {
		b = appendEvent(b[:0], &t.Events[i], qc)
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// appendEvent appends e's line; qc quotes its strings (nil: each anew).
func appendEvent(b []byte, e *Event, qc *quoteCache) []byte {
	b = append(b, `{"p":`...)
	b = strconv.AppendInt(b, int64(e.P), 10)
	b = append(b, `,"proc":`...)
	b = qc.appendString(b, e.Proc)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"op":`...)
	b = qc.appendString(b, e.Op)
	b = qc.optString(b, "kind", e.Kind)
	b = qc.optString(b, "object", e.Object)
	b = qc.optString(b, "decl", e.Decl)
	b = qc.optString(b, "where", e.Where)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, e.Time, 10)
	if e.End != 0 {
		b = append(b, `,"end":`...)
		b = strconv.AppendInt(b, e.End, 10)
	}
	b = qc.optString(b, "outcome", e.Outcome)
	b = qc.optString(b, "label", e.Label)
	if e.Msg != nil {
		b = append(b, `,"msg":{"src":`...)
		b = strconv.AppendInt(b, int64(e.Msg.Src), 10)
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, e.Msg.Seq, 10)
		b = append(b, '}')
	}
	b = qc.optString(b, "type", e.Type)
	b = qc.optString(b, "peer", e.Peer)
	if e.Off != 0 {
		b = append(b, `,"off":`...)
		b = strconv.AppendInt(b, e.Off, 10)
	}
	if e.Len != 0 {
		b = append(b, `,"len":`...)
		b = strconv.AppendInt(b, e.Len, 10)
	}
	if e.Cause != nil {
		b = append(b, `,"cause":{"p":`...)
		b = strconv.AppendInt(b, int64(e.Cause.P), 10)
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, e.Cause.Seq, 10)
		b = append(b, '}')
	}
	if len(e.Fields) > 0 {
		b = append(b, `,"fields":`...)
		b = appendJSON(b, e.Fields, 0)
	}
	b = append(b, `,"vc":`...)
	b = appendVC(b, e.VC)
	if e.BeginVC != nil {
		b = append(b, `,"bvc":`...)
		b = appendVC(b, e.BeginVC)
	}
	return append(b, '}')
}

func appendVC(b []byte, vc VC) []byte {
	b = append(b, '[')
	for i, x := range vc {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, x, 10)
	}
	return append(b, ']')
}

func optString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, s)
}

const hexDigits = "0123456789abcdef"

// quoteCache keeps the JSON of the strings an event writer met last: a
// trace's events repeat a few strings (names, ops, kinds, lines), which
// their decoding interned (the same string each time): a string met again
// is known by its pointer and its JSON copied.
type quoteCache struct {
	e [128]struct {
		s string
		q []byte
	}
}

func (c *quoteCache) appendString(b []byte, s string) []byte {
	if c == nil || s == "" {
		return appendString(b, s)
	}
	p := unsafe.StringData(s)
	h := (uint64(uintptr(unsafe.Pointer(p))) * 0x9e3779b97f4a7c15) >> 57 // Fibonacci hashing
	e := &c.e[h]
	if len(e.s) == len(s) && unsafe.StringData(e.s) == p {
		return append(b, e.q...)
	}
	// two ways: the slot's last string moves to its pair's, so that two
	// strings of one slot met in turn both stay
	o := &c.e[h^1]
	if len(o.s) == len(s) && unsafe.StringData(o.s) == p {
		return append(b, o.q...)
	}
	*o, *e = *e, *o
	e.s, e.q = s, appendString(e.q[:0], s)
	return append(b, e.q...)
}

func (c *quoteCache) optString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return c.appendString(b, s)
}

// jsonPlain: the bytes appendString writes as they are.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD as
// encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\t':
				b = append(b, '\\', 't')
			case '\r':
				b = append(b, '\\', 'r')
			default: // control characters and <>& (safe inside HTML)
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&15])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// ReadJSONL reads a trace in the canonical form.
func ReadJSONL(r io.Reader) (*Trace, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	line, err := readLine(br)
	if err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("trace: empty file, want an %s header line", formatName)
		}
		return nil, err
	}
	var h header
	if err := json.Unmarshal(line, &h); err != nil {
		return nil, fmt.Errorf("trace: line 1: %v", err)
	}
	if h.Format != formatName {
		return nil, fmt.Errorf("trace: line 1 is not an %s header", formatName)
	}
	if h.Version > Version {
		return nil, fmt.Errorf("trace: schema version %d is newer than this program's (%d)", h.Version, Version)
	}
	t := h.Trace
	for n := 2; ; n++ {
		line, err := readLine(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("trace: line %d: %v", n, err)
		}
		t.Events = append(t.Events, e)
	}
	return &t, nil
}

func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadBytes('\n')
	if err == io.EOF && len(line) > 0 {
		return line, nil
	}
	return line, err
}

// appendJSON appends v (what Fields hold: nil, bool, numbers, strings,
// []any, map[string]any) as JSON.
// Written by hand so that recording an event does not make everything the
// event points to escape to the heap (encoding/json takes an interface).
func appendJSON(b []byte, v any, depth int) []byte {
	if depth > 8 {
		return append(b, "null"...)
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return appendString(b, strconv.FormatFloat(x, 'g', -1, 64))
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case string:
		return appendString(b, x)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e, depth+1)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendJSON(b, x[k], depth+1)
		}
		return append(b, '}')
	}
	return append(b, `"(a value of another type)"`...)
}
