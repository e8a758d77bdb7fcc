package trace

import (
	"encoding/binary"
	"encoding/json"
	"errors"
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
	if mask&hasFields != 0 { // JSON, after its length (a uvarint of fixed width 3, filled in after)
		at := len(b)
		b = append(b, 0x80, 0x80, 0)
		b = appendJSON(b, e.Fields, 0)
		n := len(b) - at - 3
		if n >= 1<<21 {
			b = append(b[:at+3], "{}"...)
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

// decodeRecord decodes a record into e (P, Proc and Decl are left alone).
func decodeRecord(b []byte, e *Event, in interner) error {
	r := recReader{b: b}
	mask := r.uvarint()
	e.Seq = r.uvarint()
	e.Time = r.varint()
	e.Op = in.get(r.bytes())
	if mask&hasEnd != 0 {
		e.End = e.Time + r.varint()
	}
	if mask&hasKind != 0 {
		e.Kind = in.get(r.bytes())
	}
	if mask&hasObject != 0 {
		e.Object = in.get(r.bytes())
	}
	if mask&hasWhere != 0 {
		e.Where = in.get(r.bytes())
	}
	if mask&hasOutcome != 0 {
		e.Outcome = in.get(r.bytes())
	}
	if mask&hasLabel != 0 {
		e.Label = in.get(r.bytes())
	}
	if mask&hasMsg != 0 {
		e.Msg = &MsgID{Src: int(r.varint()), Seq: r.uvarint()}
	}
	if mask&hasType != 0 {
		e.Type = in.get(r.bytes())
	}
	if mask&hasPeer != 0 {
		e.Peer = in.get(r.bytes())
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
		fb := r.bytes()
		if !r.err {
			if err := json.Unmarshal(fb, &e.Fields); err != nil {
				return errRecord
			}
		}
	}
	e.VC = r.clock()
	if mask&hasBeginVC != 0 {
		e.BeginVC = r.clock()
	}
	if r.err {
		return errRecord
	}
	return nil
}

func (r *recReader) clock() VC {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = true
		return nil
	}
	vc := make(VC, n)
	for i := range vc {
		vc[i] = r.uvarint()
	}
	return vc
}
