package trace

import (
	"encoding/binary"
	"unsafe"
)

// MsgEvent is a message event (a send, a receive, a select's take) for
// EmitMsg: the fields of Event such an event has, by value.
type MsgEvent struct {
	Op, Kind, Object, Where, Outcome, Type, Peer string
	Time, End, Len                               int64
	Msg                                          MsgID // when HasMsg
	Cause                                        Ref   // when HasCause
	HasMsg, HasCause                             bool
}

// EmitMsg is Emit for a message event: the record Emit would write for
// the same Event, written straight into the buffer. A traced loop sends
// and receives from the same lines, on the same objects: EmitMsg keeps
// the strings it was given (Go strings never change) to know the next
// record's are the same by their pointers, where Emit compares their
// bytes with copies; and it builds the record's mask from the few fields
// a message event has, where Emit tests fifteen.
func (r *Recorder) EmitMsg(e *MsgEvent) {
	vc := r.vc
	// the longest record: ten varints (mask, seq, time, end, msg, len,
	// cause) of at most 10 bytes, the clock's, seven strings and their
	// lengths
	max := 10*(10+1+len(vc)) + 7*binary.MaxVarintLen64 + len(e.Op) + len(e.Kind) + len(e.Object) + len(e.Where) + len(e.Outcome) + len(e.Type) + len(e.Peer)
	if b := r.buf.reserve(max); b != nil {
		r.buf.commit(r.encodeMsg(b, e))
		r.last.pub = r.last.pending
		return
	}
	if cap(r.rec) < max {
		r.rec = make([]byte, max)
	}
	n := r.encodeMsg(r.rec[:max], e)
	if r.buf.Append(r.rec[:n]) {
		r.last.pub = r.last.pending
	} else {
		r.last.forget()
	}
}

// encodeMsg writes e's record (appendRecord's encoding of the Event with
// e's fields, the current sequence number and clock) at the start of b,
// which has room for it, and returns its length.
func (r *Recorder) encodeMsg(b []byte, e *MsgEvent) int {
	rp := &r.last
	vc := r.vc
	seq := vc[r.P]
	mask := uint64(seqVC) // the event's Seq is its clock's own component
	if e.End != 0 {
		mask |= hasEnd
	}
	if e.Outcome != "" {
		mask |= hasOutcome
	}
	if e.HasMsg {
		mask |= hasMsg
		if e.Msg.Src == r.P && e.Msg.Seq == seq {
			mask |= msgSelf
		} else if e.HasCause && e.Cause.P == e.Msg.Src && e.Cause.Seq == e.Msg.Seq {
			mask |= msgCause
		}
	}
	if e.Len != 0 {
		mask |= hasLen
	}
	if e.HasCause {
		mask |= hasCause
	}
	if sameRef(&rp.op, &rp.opRef, e.Op) {
		mask |= sameOp
	}
	last := rp.fieldsRef(e.Op)
	if e.Kind != "" {
		mask |= hasKind
		if sameRef(&last.f[strKind], &last.ref[strKind], e.Kind) {
			mask |= sameKind
		}
	}
	if e.Object != "" {
		mask |= hasObject
		if sameRef(&last.f[strObject], &last.ref[strObject], e.Object) {
			mask |= sameObject
		}
	}
	if e.Where != "" {
		mask |= hasWhere
		if sameRef(&last.f[strWhere], &last.ref[strWhere], e.Where) {
			mask |= sameWhere
		}
	}
	if e.Type != "" {
		mask |= hasType
		if sameRef(&last.f[strType], &last.ref[strType], e.Type) {
			mask |= sameType
		}
	}
	if e.Peer != "" {
		mask |= hasPeer
		if sameRef(&last.f[strPeer], &last.ref[strPeer], e.Peer) {
			mask |= samePeer
		}
	}
	t := e.Time
	if rp.haveTime {
		mask |= timeDelta
		t -= rp.time
	}
	delta := rp.haveVC && len(rp.vc) <= len(vc)
	if delta {
		for i, x := range rp.vc {
			if x > vc[i] {
				delta = false
				break
			}
		}
		if delta {
			mask |= vcDelta
		}
	}

	rp.pending = mask
	i := putUvarint(b, 0, mask^rp.pub)
	i = putVarint(b, i, t)
	if mask&sameOp == 0 {
		i = putStr(b, i, e.Op)
	}
	if mask&hasEnd != 0 {
		i = putVarint(b, i, e.End-e.Time)
	}
	if mask&(hasKind|sameKind) == hasKind {
		i = putStr(b, i, e.Kind)
	}
	if mask&(hasObject|sameObject) == hasObject {
		i = putStr(b, i, e.Object)
	}
	if mask&(hasWhere|sameWhere) == hasWhere {
		i = putStr(b, i, e.Where)
	}
	if mask&hasOutcome != 0 {
		i = putStr(b, i, e.Outcome)
	}
	if mask&(hasMsg|msgSelf|msgCause) == hasMsg {
		i = putVarint(b, i, int64(e.Msg.Src))
		i = putUvarint(b, i, e.Msg.Seq)
	}
	if mask&(hasType|sameType) == hasType {
		i = putStr(b, i, e.Type)
	}
	if mask&(hasPeer|samePeer) == hasPeer {
		i = putStr(b, i, e.Peer)
	}
	if mask&hasLen != 0 {
		i = putVarint(b, i, e.Len)
	}
	if mask&hasCause != 0 {
		i = putVarint(b, i, int64(e.Cause.P))
		i = putUvarint(b, i, e.Cause.Seq)
	}
	i = putUvarint(b, i, uint64(len(vc)))
	rp.time, rp.haveTime = e.Time, true
	if prev := rp.vc; delta && len(prev) == len(vc) { // the clock's width as before: the last clock becomes this one as it goes
		for k, x := range vc {
			i = putUvarint(b, i, x-prev[k])
			prev[k] = x
		}
		return i
	}
	if delta {
		prev := rp.vc
		for k, x := range vc {
			if k < len(prev) {
				i = putUvarint(b, i, x-prev[k])
			} else {
				i = putUvarint(b, i, x)
			}
		}
	} else {
		for _, x := range vc {
			i = putUvarint(b, i, x)
		}
	}
	rp.vc, rp.haveVC = append(rp.vc[:0], vc...), true
	return i
}

// sameRef says whether v (not empty) equals the string field f, ref being
// a string known to equal f ("" when none), and makes f and ref v.
func sameRef(f *[]byte, ref *string, v string) bool {
	if len(v) == len(*ref) && unsafe.StringData(v) == unsafe.StringData(*ref) {
		return true
	}
	if *f != nil && string(*f) == v {
		*ref = v
		return true
	}
	*f = append((*f)[:0], v...)
	if *f == nil {
		*f = []byte{}
	}
	*ref = v
	return false
}

// fieldsRef is fields, finding op's entry by its pointer first.
func (rp *repeats) fieldsRef(op string) *opFields {
	if e := &rp.byOp[rp.hint%uint8(len(rp.byOp))]; len(e.opRef) == len(op) && unsafe.StringData(e.opRef) == unsafe.StringData(op) {
		return e
	}
	for i := range rp.byOp {
		if e := &rp.byOp[i]; len(e.opRef) == len(op) && unsafe.StringData(e.opRef) == unsafe.StringData(op) {
			rp.hint = uint8(i)
			return e
		}
	}
	e := rp.fields(op)
	e.opRef = op
	return e
}

func putUvarint(b []byte, i int, x uint64) int {
	if x < 0x80 {
		b[i] = byte(x)
		return i + 1
	}
	for x >= 0x80 {
		b[i] = byte(x) | 0x80
		x >>= 7
		i++
	}
	b[i] = byte(x)
	return i + 1
}

func putVarint(b []byte, i int, x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return putUvarint(b, i, ux)
}

func putStr(b []byte, i int, s string) int {
	i = putUvarint(b, i, uint64(len(s)))
	return i + copy(b[i:], s)
}
