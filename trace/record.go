package trace

import (
	"encoding/binary"
	"errors"
	"math"
)

// A record is an Event in a process's buffer, without what the merge fills
// in (P, Proc, Decl): a presence mask (uvarint), then the present fields in
// the order of the bits below, integers as varints, strings and the fields
// object (JSON) with a uvarint length, the clock as a count and components.

const (
	hasEnd = 1 << iota
	hasKind
	hasObject
	hasWhere
	hasOutcome
	hasLabel
	hasMsg
	hasType
	hasPeer
	hasOff
	hasLen
	hasCause
	hasFields
	hasBeginVC
)

var errRecord = errors.New("trace: malformed record")

// appendRecord encodes e (its Seq, Time, ... and VC) after b.
func appendRecord(b []byte, e *Event) []byte {
	var mask uint64
	if e.End != 0 {
		mask |= hasEnd
	}
	if e.Kind != "" {
		mask |= hasKind
	}
	if e.Object != "" {
		mask |= hasObject
	}
	if e.Where != "" {
		mask |= hasWhere
	}
	if e.Outcome != "" {
		mask |= hasOutcome
	}
	if e.Label != "" {
		mask |= hasLabel
	}
	if e.Msg != nil {
		mask |= hasMsg
	}
	if e.Type != "" {
		mask |= hasType
	}
	if e.Peer != "" {
		mask |= hasPeer
	}
	if e.Off != 0 {
		mask |= hasOff
	}
	if e.Len != 0 {
		mask |= hasLen
	}
	if e.Cause != nil {
		mask |= hasCause
	}
	if e.BeginVC != nil {
		mask |= hasBeginVC
	}
	if len(e.Fields) > 0 {
		mask |= hasFields
	}
	b = binary.AppendUvarint(b, mask)
	b = binary.AppendUvarint(b, e.Seq)
	b = binary.AppendVarint(b, e.Time)
	b = appendStr(b, e.Op)
	if mask&hasEnd != 0 {
		b = binary.AppendVarint(b, e.End-e.Time)
	}
	if mask&hasKind != 0 {
		b = appendStr(b, e.Kind)
	}
	if mask&hasObject != 0 {
		b = appendStr(b, e.Object)
	}
	if mask&hasWhere != 0 {
		b = appendStr(b, e.Where)
	}
	if mask&hasOutcome != 0 {
		b = appendStr(b, e.Outcome)
	}
	if mask&hasLabel != 0 {
		b = appendStr(b, e.Label)
	}
	if mask&hasMsg != 0 {
		b = binary.AppendVarint(b, int64(e.Msg.Src))
		b = binary.AppendUvarint(b, e.Msg.Seq)
	}
	if mask&hasType != 0 {
		b = appendStr(b, e.Type)
	}
	if mask&hasPeer != 0 {
		b = appendStr(b, e.Peer)
	}
	if mask&hasOff != 0 {
		b = binary.AppendVarint(b, e.Off)
	}
	if mask&hasLen != 0 {
		b = binary.AppendVarint(b, e.Len)
	}
	if mask&hasCause != 0 {
		b = binary.AppendVarint(b, int64(e.Cause.P))
		b = binary.AppendUvarint(b, e.Cause.Seq)
	}
	if mask&hasFields != 0 { // after its length (a uvarint of fixed width 3, filled in after)
		at := len(b)
		b = append(b, 0x80, 0x80, 0)
		b = appendValue(b, e.Fields, 0)
		n := len(b) - at - 3
		if n >= 1<<21 {
			b = append(b[:at+3], 'm', 0)
			n = 2
		}
		b[at], b[at+1], b[at+2] = byte(n)|0x80, byte(n>>7)|0x80, byte(n>>14)
	}
	b = appendClock(b, e.VC)
	if mask&hasBeginVC != 0 {
		b = appendClock(b, e.BeginVC)
	}
	return b
}

func appendClock(b []byte, vc VC) []byte {
	b = binary.AppendUvarint(b, uint64(len(vc)))
	for _, x := range vc {
		b = binary.AppendUvarint(b, x)
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type recReader struct {
	b   []byte
	err bool
}

func (r *recReader) uvarint() uint64 {
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *recReader) varint() int64 {
	x, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *recReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = true
		r.b = nil
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// strings interns the short strings records repeat (ops, kinds, names,
// lines), so a million events do not hold a million copies.
type interner map[string]string

func (s interner) get(b []byte) string {
	if v, ok := s[string(b)]; ok {
		return v
	}
	v := string(b)
	if len(v) <= 64 {
		s[v] = v
	}
	return v
}

// decoder decodes records: it interns their strings and cuts their
// clocks out of one arena rather than allocating each (a million small
// allocations were a fifth of a --race run's merge).
type decoder struct {
	in    interner
	arena []uint64
	// noAccessFields leaves out the fields (the values) of shared-memory
	// accesses, which the race detector does not read.
	noAccessFields bool
	last           [8]string // per string field, the last value: most records repeat it
}

// str interns b, the string field i of a record.
func (d *decoder) str(i int, b []byte) string {
	if string(b) == d.last[i] {
		return d.last[i]
	}
	v := d.in.get(b)
	d.last[i] = v
	return v
}

func (d *decoder) clock(r *recReader) VC {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = true
		return nil
	}
	if uint64(len(d.arena)) < n {
		d.arena = make([]uint64, max(n, 1<<14))
	}
	vc := VC(d.arena[:n:n])
	d.arena = d.arena[n:]
	for i := range vc {
		vc[i] = r.uvarint()
	}
	return vc
}

// decodeRecord decodes a record into e (P, Proc and Decl are left alone).
func decodeRecord(b []byte, e *Event, in interner) error {
	d := decoder{in: in}
	return d.decode(b, e)
}

func (d *decoder) decode(b []byte, e *Event) error {
	r := recReader{b: b}
	mask := r.uvarint()
	e.Seq = r.uvarint()
	e.Time = r.varint()
	e.Op = d.str(0, r.bytes())
	if mask&hasEnd != 0 {
		e.End = e.Time + r.varint()
	}
	if mask&hasKind != 0 {
		e.Kind = d.str(1, r.bytes())
	}
	if mask&hasObject != 0 {
		e.Object = d.str(2, r.bytes())
	}
	if mask&hasWhere != 0 {
		e.Where = d.str(3, r.bytes())
	}
	if mask&hasOutcome != 0 {
		e.Outcome = d.str(4, r.bytes())
	}
	if mask&hasLabel != 0 {
		e.Label = d.str(5, r.bytes())
	}
	if mask&hasMsg != 0 {
		e.Msg = &MsgID{Src: int(r.varint()), Seq: r.uvarint()}
	}
	if mask&hasType != 0 {
		e.Type = d.str(6, r.bytes())
	}
	if mask&hasPeer != 0 {
		e.Peer = d.str(7, r.bytes())
	}
	if mask&hasOff != 0 {
		e.Off = r.varint()
	}
	if mask&hasLen != 0 {
		e.Len = r.varint()
	}
	if mask&hasCause != 0 {
		e.Cause = &Ref{P: int(r.varint()), Seq: r.uvarint()}
	}
	if mask&hasFields != 0 {
		f := recReader{b: r.bytes()}
		if d.noAccessFields && (e.Kind == "shm" || e.Kind == "shared") {
			// left out
		} else if m, ok := f.value(d.in, 0).(map[string]any); ok && !f.err {
			e.Fields = m
		} else if !r.err {
			return errRecord
		}
	}
	e.VC = d.clock(&r)
	if mask&hasBeginVC != 0 {
		e.BeginVC = d.clock(&r)
	}
	if r.err {
		return errRecord
	}
	return nil
}

// The fields object of a record, and the values in it, are a tag byte and
// what follows it: 'n' nil, 't' true, 'f' false, 'd' a number (float64
// bits, as a JSON round trip would give it), 's' a string, 'a' a list
// (count, values), 'm' an object (count, then key string and value). Not
// JSON: decoding a million events' fields with encoding/json was most of
// the cost of a --race run (issue 11).

func appendValue(b []byte, v any, depth int) []byte {
	if depth > 8 {
		return append(b, 'n')
	}
	switch x := v.(type) {
	case nil:
		return append(b, 'n')
	case bool:
		if x {
			return append(b, 't')
		}
		return append(b, 'f')
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, 'd'), math.Float64bits(x))
	case int:
		return binary.LittleEndian.AppendUint64(append(b, 'd'), math.Float64bits(float64(x)))
	case int64:
		return binary.LittleEndian.AppendUint64(append(b, 'd'), math.Float64bits(float64(x)))
	case uint64:
		return binary.LittleEndian.AppendUint64(append(b, 'd'), math.Float64bits(float64(x)))
	case string:
		return appendStr(append(b, 's'), x)
	case []any:
		b = binary.AppendUvarint(append(b, 'a'), uint64(len(x)))
		for _, e := range x {
			b = appendValue(b, e, depth+1)
		}
		return b
	case map[string]any:
		b = binary.AppendUvarint(append(b, 'm'), uint64(len(x)))
		for k, e := range x {
			b = appendStr(b, k)
			b = appendValue(b, e, depth+1)
		}
		return b
	}
	return appendStr(append(b, 's'), "(a value of another type)")
}

func (r *recReader) value(in interner, depth int) any {
	if len(r.b) == 0 || depth > 9 {
		r.err = true
		return nil
	}
	tag := r.b[0]
	r.b = r.b[1:]
	switch tag {
	case 'n':
		return nil
	case 't':
		return true
	case 'f':
		return false
	case 'd':
		if len(r.b) < 8 {
			r.err = true
			return nil
		}
		x := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
		r.b = r.b[8:]
		return x
	case 's':
		return in.get(r.bytes())
	case 'a':
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			r.err = true
			return nil
		}
		l := make([]any, n)
		for i := range l {
			l[i] = r.value(in, depth+1)
		}
		return l
	case 'm':
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			r.err = true
			return nil
		}
		m := make(map[string]any, n)
		for i := uint64(0); i < n && !r.err; i++ {
			k := in.get(r.bytes())
			m[k] = r.value(in, depth+1)
		}
		return m
	}
	r.err = true
	return nil
}
