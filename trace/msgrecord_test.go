package trace

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// EmitMsg writes the record Emit writes for the same event, whatever came
// before: random message events (their strings sometimes the same
// strings, sometimes equal copies) among other events, clocks that grow,
// and buffers that fill up.
func TestEmitMsgSameRecords(t *testing.T) {
	for _, size := range []int{0, 4096} {
		for seed := uint64(1); seed <= 20; seed++ {
			emitMsgSame(t, seed, size)
		}
	}
}

func emitMsgSame(t *testing.T, seed uint64, size int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	ba, err := NewBuffer("a", size)
	if err != nil {
		t.Fatal(err)
	}
	defer ba.Close()
	bb, err := NewBuffer("b", size)
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
	ra, rb := NewRecorder(1, 3, ba, nil), NewRecorder(1, 3, bb, nil)
	pick := func(s ...string) string {
		v := s[rng.IntN(len(s))]
		if rng.IntN(4) == 0 { // an equal string elsewhere
			v = strings.Clone(v)
		}
		return v
	}
	ops := []string{OpSend, OpReceive, OpSelect, OpRendezvous}
	// a record of 128 bytes or more: its length takes two bytes (the
	// record EmitMsg wrote after one is moved up)
	longType := strings.Repeat("t", 150)
	at := int64(1000)
	for n := 0; n < 3000; n++ {
		at += int64(rng.IntN(5000))
		if rng.IntN(10) == 0 { // another event, through Emit on both
			e := Event{Op: pick(OpPost, OpMark, OpSend), Kind: pick("", "semaphore", "mailbox"), Object: pick("s", "box"), Where: pick("", "x.lua:3"), Label: pick("", "l"), Time: at, Off: int64(rng.IntN(3))}
			e2 := e
			ra.Record(&e)
			rb.Record(&e2)
			continue
		}
		if rng.IntN(8) == 0 { // a clock picked up
			k := rng.IntN(5)
			x := uint64(rng.IntN(100000))
			for _, r := range []*Recorder{ra, rb} {
				for len(r.vc) <= k {
					r.vc = append(r.vc, 0)
				}
				if k != r.P && x > r.vc[k] {
					r.vc[k] = x
				}
			}
		}
		ra.Tick()
		rb.Tick()
		m := MsgEvent{Op: pick(ops...), Kind: pick("", "mailbox", "inbox"), Object: pick("", "box", "other"), Where: pick("", "x.lua:10", "x.lua:11"),
			Outcome: pick("", "", "", "timeout"), Type: pick("", "", "t", "stop", longType), Peer: pick("", "p.1", "main"), Time: at}
		if rng.IntN(3) != 0 {
			m.End = at + int64(rng.IntN(300))
		}
		if rng.IntN(5) != 0 {
			m.Len = int64(rng.IntN(200))
		}
		if rng.IntN(4) != 0 {
			m.HasMsg = true
			switch rng.IntN(3) {
			case 0:
				m.Msg = MsgID{Src: 1, Seq: ra.Seq()}
			case 1:
				m.Msg = MsgID{Src: rng.IntN(3), Seq: uint64(rng.IntN(1000))}
			}
		}
		if rng.IntN(2) == 0 {
			m.HasCause = true
			m.Cause = Ref{P: rng.IntN(3), Seq: uint64(rng.IntN(1000))}
			if m.HasMsg && rng.IntN(2) == 0 {
				m.Cause = Ref{P: m.Msg.Src, Seq: m.Msg.Seq}
			}
		}
		e := Event{Op: m.Op, Kind: m.Kind, Object: m.Object, Where: m.Where, Outcome: m.Outcome, Type: m.Type, Peer: m.Peer, Time: m.Time, End: m.End, Len: m.Len}
		if m.HasMsg {
			id := m.Msg
			e.Msg = &id
		}
		if m.HasCause {
			c := m.Cause
			e.Cause = &c
		}
		ra.Emit(&e)
		rb.EmitMsg(&m)
	}
	// the longest numbers: the record's bound holds
	for _, r := range []*Recorder{ra, rb} {
		for i := range r.vc {
			r.vc[i] = math.MaxUint64 - 1
		}
		r.vc = append(r.vc, math.MaxUint64)
		r.Tick()
	}
	m := MsgEvent{Op: "o", Kind: "k", Object: "b", Where: "w", Outcome: "x", Type: "t", Peer: "p", Time: math.MinInt64 + 1, End: math.MaxInt64, Len: math.MinInt64,
		Msg: MsgID{Src: math.MinInt, Seq: math.MaxUint64}, HasMsg: true, Cause: Ref{P: math.MaxInt, Seq: math.MaxUint64 - 1}, HasCause: true}
	ra.Emit(&Event{Op: m.Op, Kind: m.Kind, Object: m.Object, Where: m.Where, Outcome: m.Outcome, Type: m.Type, Peer: m.Peer, Time: m.Time, End: m.End, Len: m.Len, Msg: &m.Msg, Cause: &m.Cause})
	rb.EmitMsg(&m)
	var a, b [][]byte
	ba.Records(func(rec []byte) error { a = append(a, bytes.Clone(rec)); return nil })
	bb.Records(func(rec []byte) error { b = append(b, bytes.Clone(rec)); return nil })
	if len(a) != len(b) {
		t.Fatalf("seed %d: %d records through Emit, %d through EmitMsg", seed, len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("seed %d size %d: record %d: Emit %x, EmitMsg %x", seed, size, i, a[i], b[i])
		}
	}
	if ca, da := ba.Stats(); true {
		if cb, db := bb.Stats(); ca != cb || da != db {
			t.Fatalf("seed %d: stats %d %d vs %d %d", seed, ca, da, cb, db)
		}
	}
}

// acquireMessageRef is AcquireMessage as it was, with encoding/binary.
func acquireMessageRef(vc VC, body []byte) (VC, Ref, []byte, bool) {
	p, n := binary.Uvarint(body)
	if n <= 0 {
		return vc, Ref{}, nil, false
	}
	body = body[n:]
	k, n := binary.Uvarint(body)
	if n <= 0 || k > uint64(len(body)) {
		return vc, Ref{}, nil, false
	}
	body = body[n:]
	var cause Ref
	for i := 0; i < int(k); i++ {
		x, n := binary.Uvarint(body)
		if n <= 0 {
			return vc, Ref{}, nil, false
		}
		body = body[n:]
		if i == int(p) {
			cause = Ref{P: int(p), Seq: x}
		}
		if i < len(vc) {
			vc[i] = max(vc[i], x)
		} else {
			vc = append(vc, x)
		}
	}
	return vc, cause, body, true
}

// AcquireMessage reads what encoding/binary reads, and fails where it
// fails: clocks of every width and size, cut short, with bad bytes.
func TestAcquireMessageDecodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 20000; n++ {
		w := rng.IntN(6)
		from := &Recorder{P: rng.IntN(w + 1), vc: make(VC, w)}
		for i := range from.vc {
			from.vc[i] = rng.Uint64() >> rng.IntN(64)
		}
		body := append(from.AppendClock(nil), "body"...)
		ref := binary.AppendUvarint(binary.AppendUvarint(nil, uint64(from.P)), uint64(len(from.vc)))
		for _, x := range from.vc {
			ref = binary.AppendUvarint(ref, x)
		}
		if pre := []byte("pre"); !bytes.Equal(from.AppendClock(pre[:3:3]), append(pre, ref...)) || !bytes.Equal(body[:len(ref)], ref) {
			t.Fatalf("AppendClock %x, want %x", body, ref)
		}
		switch rng.IntN(4) {
		case 0:
			body = body[:rng.IntN(len(body)+1)]
		case 1:
			body[rng.IntN(len(body))] = byte(rng.IntN(256))
		}
		start := make(VC, rng.IntN(5))
		for i := range start {
			start[i] = uint64(rng.IntN(1000))
		}
		wantVC, wantCause, wantRest, ok := acquireMessageRef(start.Clone(), body)
		r := &Recorder{vc: start.Clone()}
		cause, rest, err := r.AcquireMessage(bytes.Clone(body))
		if ok != (err == nil) {
			t.Fatalf("%x: ok %v, err %v", body, ok, err)
		}
		if !ok {
			continue
		}
		if cause != wantCause || !bytes.Equal(rest, wantRest) || !slices.Equal(r.vc, wantVC) {
			t.Fatalf("%x: %v %x %v, want %v %x %v", body, cause, rest, r.vc, wantCause, wantRest, wantVC)
		}
	}
}

// sortLanes orders what Sort orders, as Sort does: lanes of random
// lengths whose events complete in order (with ties within and across
// lanes), and lanes that do not (Sort then).
func TestSortLanes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; n < 2000; n++ {
		var ev []Event
		var lanes []int
		k := rng.IntN(7)
		for p := 0; p < k; p++ {
			lanes = append(lanes, len(ev))
			at := int64(rng.IntN(20))
			for s, m := uint64(1), rng.IntN(30); s <= uint64(m); s++ {
				e := Event{P: p, Seq: s, Time: at, Op: fmt.Sprint(p, s)}
				if rng.IntN(3) == 0 {
					e.End = at + int64(rng.IntN(4))
				}
				if n%5 == 0 && rng.IntN(10) == 0 { // out of order: Sort's business
					e.Time -= int64(rng.IntN(10))
				}
				at = e.Done() + int64(rng.IntN(3))
				ev = append(ev, e)
			}
		}
		want := slices.Clone(ev)
		Sort(want)
		sortLanes(ev, append(lanes, len(ev)))
		for i := range ev {
			if ev[i].P != want[i].P || ev[i].Seq != want[i].Seq || ev[i].Op != want[i].Op {
				t.Fatalf("case %d: at %d: %d#%d, Sort has %d#%d", n, i, ev[i].P, ev[i].Seq, want[i].P, want[i].Seq)
			}
		}
	}
}

// recReader reads what encoding/binary reads, and fails where it fails.
func TestRecReaderVarints(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for n := 0; n < 50000; n++ {
		var b []byte
		for k := rng.IntN(4); k >= 0; k-- {
			b = binary.AppendUvarint(b, rng.Uint64()>>rng.IntN(64))
		}
		switch rng.IntN(4) {
		case 0:
			b = b[:rng.IntN(len(b)+1)]
		case 1:
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		case 2:
			b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
		}
		for _, signed := range []bool{false, true} {
			r, rest := recReader{b: b}, b
			for len(rest) > 0 {
				var want uint64
				var m int
				if signed {
					v, k := binary.Varint(rest)
					want, m = uint64(v), k
				} else {
					want, m = binary.Uvarint(rest)
				}
				var got uint64
				if signed {
					got = uint64(r.varint())
				} else {
					got = r.uvarint()
				}
				if (m <= 0) != r.err || m > 0 && (got != want || len(r.b) != len(rest)-m) {
					t.Fatalf("%x signed %v: got %d err %v left %d, binary: %d %d", b, signed, got, r.err, len(r.b), want, m)
				}
				if m <= 0 {
					break
				}
				rest = rest[m:]
			}
		}
	}
}
