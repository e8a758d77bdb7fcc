package trace

import (
	"encoding/binary"
	"errors"
	"math"
)

// A record is an Event in a process's buffer, without what the merge fills
// in (P, Proc, Decl): a presence mask, then the present fields (in the
// order appendRecord writes them), integers as varints, strings and the
// fields object with a uvarint length, the clock as a count and
// components.
//
// The mask is a uvarint XORed with the mask of the buffer's previous
// record: a loop's records have the same few masks, with bits up to 24
// (four bytes); the bits by which a send's differs from a receive's
// come first, so that the XOR is one byte in a loop of one op and in one
// that alternates the two.

const (
	// msgSelf: the message id is this event (a send); msgCause: it is
	// the cause (a receive).
	msgSelf = 1 << iota
	msgCause
	hasCause
	hasPeer
	samePeer
	hasType
	sameType
	hasEnd
	hasKind
	hasObject
	hasWhere
	hasOutcome
	hasLabel
	hasMsg
	hasOff
	hasLen
	hasFields
	hasBeginVC
	// same<field>: the string field is the one the process's previous
	// record with the same op had (the op: the previous record's), so it
	// is not written again. A loop records the same few operations, on
	// the same objects, from the same lines, again and again. (samePeer
	// and sameType are above.)
	sameOp
	sameKind
	sameObject
	sameWhere
	// timeDelta: Time is written as the difference from the previous
	// record's; vcDelta: the clock's components likewise (a clock never
	// goes back). Most records are then small numbers.
	timeDelta
	vcDelta
	// seqVC: Seq is not written; it is the clock's own component
	// (VC[P], which a record always has: Emit and EmitMsg write the
	// process's clock, whose own component is the event's Seq). 2-3
	// bytes of a 17-21-byte message record.
	seqVC
)

// The string fields of a record, by their index in decoder.last and
// lastStrings.
const (
	strOp = iota
	strKind
	strObject
	strWhere
	strOutcome
	strLabel
	strType
	strPeer
)

// lastStrings is what a process's previous record with one op held in
// its string fields, for the decoder (which reads a process's records in
// order) to fill in what the encoder left out.
type lastStrings [8]string

// repeats is the encoder's side: the previous record's op, and per op
// (the last few used) copies of its last record's string fields. Copies:
// keeping the event's own strings would make every event's pointers
// escape to the heap, three allocations a traced receive.
type repeats struct {
	op       []byte
	opRef    string // a string equal to op (set by the message path; "" when not known)
	byOp     [8]opFields
	victim   int
	hint     uint8 // fieldsRef: where it found the last op
	time     int64 // the previous record's Time, when haveTime
	vc       VC    // and clock, when haveVC
	haveTime bool
	haveVC   bool
	// pub is the mask of the last record published in the buffer (what
	// the next record's mask is XORed with), pending the mask of the
	// record just encoded, for the caller to make pub once published. A
	// dropped record leaves pub as it was: forget keeps it.
	pub, pending uint64
}

type opFields struct {
	op    []byte
	opRef string    // a string equal to op ("": not known)
	f     [8][]byte // nil: not known
	// ref: per field, a string equal to f (the last the message path
	// wrote, kept, so that the next one's comparison is a pointer's);
	// "" when not known
	ref [8]string
}

// forget makes the next record repeat nothing (the last was dropped).
func (rp *repeats) forget() { pub := rp.pub; *rp = repeats{}; rp.pub = pub }

// fields finds, or makes, op's entry.
func (rp *repeats) fields(op string) *opFields {
	for i := range rp.byOp {
		if e := &rp.byOp[i]; e.op != nil && string(e.op) == op {
			return e
		}
	}
	e := &rp.byOp[rp.victim]
	rp.victim = (rp.victim + 1) % len(rp.byOp)
	e.op = append(e.op[:0], op...)
	e.opRef = ""
	for i := range e.f {
		e.f[i], e.ref[i] = nil, ""
	}
	return e
}

var errRecord = errors.New("trace: malformed record")

// appendRecord encodes e (its Seq, Time, ... and VC) after b. rp is what
// the process's previous records held (updated; nil: repeat nothing).
func appendRecord(b []byte, p int, e *Event, rp *repeats) []byte {
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
	if rp != nil {
		if rp.op != nil && string(rp.op) == e.Op {
			mask |= sameOp
		} else {
			rp.op = append(rp.op[:0], e.Op...)
			rp.opRef = ""
		}
		last := rp.fields(e.Op)
		mask |= same(last, strKind, e.Kind, sameKind, mask&hasKind != 0)
		mask |= same(last, strObject, e.Object, sameObject, mask&hasObject != 0)
		mask |= same(last, strWhere, e.Where, sameWhere, mask&hasWhere != 0)
		mask |= same(last, strType, e.Type, sameType, mask&hasType != 0)
		mask |= same(last, strPeer, e.Peer, samePeer, mask&hasPeer != 0)
		if rp.haveTime {
			mask |= timeDelta
		}
		if rp.haveVC && len(rp.vc) <= len(e.VC) && rp.vc.Leq(e.VC) {
			mask |= vcDelta
		}
	}
	if p >= 0 && p < len(e.VC) && e.VC[p] == e.Seq {
		mask |= seqVC
	}
	if m := e.Msg; m != nil {
		if m.Src == p && m.Seq == e.Seq {
			mask |= msgSelf
		} else if c := e.Cause; c != nil && c.P == m.Src && c.Seq == m.Seq {
			mask |= msgCause
		}
	}
	if rp != nil {
		rp.pending = mask
		b = binary.AppendUvarint(b, mask^rp.pub)
	} else {
		b = binary.AppendUvarint(b, mask)
	}
	if mask&seqVC == 0 {
		b = binary.AppendUvarint(b, e.Seq)
	}
	if mask&timeDelta != 0 {
		b = binary.AppendVarint(b, e.Time-rp.time)
	} else {
		b = binary.AppendVarint(b, e.Time)
	}
	if mask&sameOp == 0 {
		b = appendStr(b, e.Op)
	}
	if mask&hasEnd != 0 {
		b = binary.AppendVarint(b, e.End-e.Time)
	}
	if mask&(hasKind|sameKind) == hasKind {
		b = appendStr(b, e.Kind)
	}
	if mask&(hasObject|sameObject) == hasObject {
		b = appendStr(b, e.Object)
	}
	if mask&(hasWhere|sameWhere) == hasWhere {
		b = appendStr(b, e.Where)
	}
	if mask&hasOutcome != 0 {
		b = appendStr(b, e.Outcome)
	}
	if mask&hasLabel != 0 {
		b = appendStr(b, e.Label)
	}
	if mask&(hasMsg|msgSelf|msgCause) == hasMsg {
		b = binary.AppendVarint(b, int64(e.Msg.Src))
		b = binary.AppendUvarint(b, e.Msg.Seq)
	}
	if mask&(hasType|sameType) == hasType {
		b = appendStr(b, e.Type)
	}
	if mask&(hasPeer|samePeer) == hasPeer {
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
	if mask&vcDelta != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.VC)))
		for i, x := range e.VC {
			b = binary.AppendUvarint(b, x-rp.vc.Get(i))
		}
	} else {
		b = appendClock(b, e.VC)
	}
	if mask&hasBeginVC != 0 {
		b = appendClock(b, e.BeginVC)
	}
	if rp != nil {
		rp.time, rp.haveTime = e.Time, true
		rp.vc, rp.haveVC = append(rp.vc[:0], e.VC...), true
	}
	return b
}

// same says whether the string field i (present) repeats the previous
// record's, giving bit, and remembers it.
func same(last *opFields, i int, v string, bit uint64, present bool) uint64 {
	if !present {
		return 0
	}
	if string(last.f[i]) == v && last.f[i] != nil {
		return bit
	}
	last.f[i] = append(last.f[i][:0], v...)
	if last.f[i] == nil {
		last.f[i] = []byte{}
	}
	last.ref[i] = ""
	return 0
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
	if b := r.b; len(b) >= 4 { // up to 28 bits, most of a record's numbers, unrolled
		x := uint64(b[0])
		if x < 0x80 {
			r.b = b[1:]
			return x
		}
		x &= 0x7f
		c := uint64(b[1])
		if x |= (c & 0x7f) << 7; c < 0x80 {
			r.b = b[2:]
			return x
		}
		c = uint64(b[2])
		if x |= (c & 0x7f) << 14; c < 0x80 {
			r.b = b[3:]
			return x
		}
		c = uint64(b[3])
		if x |= (c & 0x7f) << 21; c < 0x80 {
			r.b = b[4:]
			return x
		}
	} else if len(b) > 0 && b[0] < 0x80 {
		r.b = b[1:]
		return uint64(b[0])
	}
	x, n := getUvarint(r.b, 0) // binary.Uvarint's, in place
	if n < 0 {
		r.err = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *recReader) varint() int64 {
	ux := r.uvarint() // binary.Varint's zigzag
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
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
	last           lastStrings             // per string field, the last value: most records repeat it
	prevOp         string                  // the previous record's op (sameOp)
	prevTime       int64                   // and Time (timeDelta)
	prevVC         VC                      // and clock (vcDelta)
	byOp           map[string]*lastStrings // per op, the string fields of its last record
	lastOp         string                  // the op byOp was last asked for (interned)
	lastLS         *lastStrings            // and its answer
	prevMask       uint64                  // the previous record's mask (the next one's is XORed with it)
	msgs           []MsgID                 // where the next events' Msg and Cause go
	refs           []Ref
}

// msgID is a new MsgID, cut from a chunk (one allocation for many events).
func (d *decoder) msgID(id MsgID) *MsgID { return cut(&d.msgs, id) }

// ref is msgID for a Ref.
func (d *decoder) ref(r Ref) *Ref { return cut(&d.refs, r) }

// cut puts v in the first free element of *chunk, taking a new chunk of
// 256 when it is used up, and returns that element. (It was meant to
// double from 16, but a used-up chunk's cap is 0: every chunk was 16.)
func cut[T any](chunk *[]T, v T) *T {
	if len(*chunk) == 0 {
		*chunk = make([]T, 256)
	}
	p := &(*chunk)[0]
	*p = v
	*chunk = (*chunk)[1:]
	return p
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

// field decodes the string field i: written, or that of the last record
// with the same op (bit set).
func (d *decoder) field(r *recReader, mask uint64, ls *lastStrings, i int, bit uint64) string {
	if mask&bit != 0 {
		return ls[i]
	}
	v := d.str(i, r.bytes())
	ls[i] = v
	return v
}

// next begins another process's records: nothing repeats from the last.
func (d *decoder) next() {
	d.prevOp, d.byOp, d.prevTime, d.prevVC, d.lastOp, d.lastLS, d.prevMask = "", nil, 0, nil, "", nil, 0
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

func (d *decoder) decode(b []byte, e *Event) error {
	r := recReader{b: b}
	mask := r.uvarint() ^ d.prevMask
	d.prevMask = mask
	if mask&seqVC == 0 {
		e.Seq = r.uvarint()
	}
	e.Time = r.varint()
	if mask&timeDelta != 0 {
		e.Time += d.prevTime
	}
	d.prevTime = e.Time
	if mask&sameOp != 0 {
		e.Op = d.prevOp
	} else {
		e.Op = d.str(strOp, r.bytes())
		d.prevOp = e.Op
	}
	ls := d.lastLS
	if ls == nil || e.Op != d.lastOp { // the op is interned: the same op's comparison is a pointer's
		ls = d.byOp[e.Op]
		if ls == nil {
			if d.byOp == nil {
				d.byOp = map[string]*lastStrings{}
			}
			ls = &lastStrings{}
			d.byOp[e.Op] = ls
		}
		d.lastOp, d.lastLS = e.Op, ls
	}
	if mask&hasEnd != 0 {
		e.End = e.Time + r.varint()
	}
	if mask&hasKind != 0 {
		e.Kind = d.field(&r, mask, ls, strKind, sameKind)
	}
	if mask&hasObject != 0 {
		e.Object = d.field(&r, mask, ls, strObject, sameObject)
	}
	if mask&hasWhere != 0 {
		e.Where = d.field(&r, mask, ls, strWhere, sameWhere)
	}
	if mask&hasOutcome != 0 {
		e.Outcome = d.str(strOutcome, r.bytes())
	}
	if mask&hasLabel != 0 {
		e.Label = d.str(strLabel, r.bytes())
	}
	if mask&(hasMsg|msgSelf|msgCause) == hasMsg {
		src := int(r.varint())
		e.Msg = d.msgID(MsgID{Src: src, Seq: r.uvarint()})
	}
	if mask&hasType != 0 {
		e.Type = d.field(&r, mask, ls, strType, sameType)
	}
	if mask&hasPeer != 0 {
		e.Peer = d.field(&r, mask, ls, strPeer, samePeer)
	}
	if mask&hasOff != 0 {
		e.Off = r.varint()
	}
	if mask&hasLen != 0 {
		e.Len = r.varint()
	}
	if mask&hasCause != 0 {
		p := int(r.varint())
		e.Cause = d.ref(Ref{P: p, Seq: r.uvarint()})
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
	if mask&vcDelta != 0 {
		for i := range e.VC {
			e.VC[i] += d.prevVC.Get(i)
		}
	}
	d.prevVC = e.VC
	if mask&seqVC != 0 {
		if e.P < 0 || e.P >= len(e.VC) {
			return errRecord
		}
		e.Seq = e.VC[e.P]
	}
	switch {
	case mask&msgSelf != 0:
		e.Msg = d.msgID(MsgID{Src: e.P, Seq: e.Seq})
	case mask&msgCause != 0 && e.Cause != nil:
		e.Msg = d.msgID(MsgID{Src: e.Cause.P, Seq: e.Cause.Seq})
	}
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
