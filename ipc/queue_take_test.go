package ipc

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
)

// takeRecord (the receive's one-pass read of a record) fills exactly what
// DecodeMessage fills, matches as Filter.match does, and leaves into alone
// when the filter does not match.
func TestTakeRecordMatchesDecode(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	into := Message{Type: "old", Body: make([]byte, 0, 16)}
	for i := 0; i < 2000; i++ {
		m := Message{Src: int32(rng.Intn(5)) - 1, Dst: rng.Int31(), Seq: rng.Uint64(), Time: rng.Int63(), Flags: uint16(rng.Intn(3))}
		if rng.Intn(2) == 0 {
			m.Type = strings.Repeat("t", rng.Intn(4))
		}
		m.Body = bytes.Repeat([]byte{byte(i)}, rng.Intn(100))
		b := make([]byte, m.EncodedLen()+rng.Intn(8)) // a record may hold padding
		PutMessage(b, &m)
		var want Message
		if err := DecodeMessage(b[:m.EncodedLen()], &want); err != nil {
			t.Fatal(err)
		}
		f := Filter{BySrc: rng.Intn(2) == 0, Src: int32(rng.Intn(5)) - 1, ByType: rng.Intn(2) == 0, Type: strings.Repeat("t", rng.Intn(4))}
		h, _ := DecodeHeader(b)
		match := f.match(&h, []byte(m.Type))
		before := into
		src, ok, bad := takeRecord(b, &f, &into)
		if bad || ok != match || src != m.Src {
			t.Fatalf("%d: ok %v bad %v src %d, want ok %v src %d", i, ok, bad, src, match, m.Src)
		}
		if !ok {
			if into.Type != before.Type || into.Seq != before.Seq || !bytes.Equal(into.Body, before.Body) {
				t.Fatalf("%d: an unmatched record changed into", i)
			}
			continue
		}
		if into.Type != want.Type || into.Src != want.Src || into.Dst != want.Dst || into.Seq != want.Seq ||
			into.Time != want.Time || into.Flags != want.Flags || !bytes.Equal(into.Body, want.Body) {
			t.Fatalf("%d: took %+v, want %+v", i, into, want)
		}
	}
}

// A record whose message is malformed is refused (into untouched), and a
// receive says the queue's memory is corrupt, and why.
func TestTakeRecordBad(t *testing.T) {
	m := Message{Type: "ty", Body: []byte("body")}
	good := make([]byte, m.EncodedLen())
	PutMessage(good, &m)
	for name, spoil := range map[string]func(b []byte) []byte{
		"short":          func(b []byte) []byte { return b[:HeaderSize-1] },
		"magic":          func(b []byte) []byte { b[0] ^= 1; return b },
		"version":        func(b []byte) []byte { b[2] = 9; return b },
		"reserved":       func(b []byte) []byte { b[3] = 1; return b },
		"reserved word":  func(b []byte) []byte { b[22] = 1; return b },
		"body too long":  func(b []byte) []byte { b[8]++; return b },
		"type too long":  func(b []byte) []byte { b[6] = 0; b[7] = 1; return b },
		"body over 8MiB": func(b []byte) []byte { b[11] = 0x80; return b },
	} {
		b := spoil(bytes.Clone(good))
		into := Message{Type: "keep", Seq: 7}
		if _, ok, bad := takeRecord(b, &Filter{}, &into); !bad || ok || into.Type != "keep" || into.Seq != 7 {
			t.Errorf("%s: ok %v bad %v into %+v", name, ok, bad, into)
		}
	}
	q := newTestQueue(t, QueueConfig{Capacity: Unbounded})
	mustSend(t, q, &m)
	q.ring[recPrefix] ^= 1 // the first record's magic
	var into Message
	err := q.Receive(Filter{}, nb, &into)
	if err == nil || !strings.Contains(err.Error(), "corrupt at 0") || !strings.Contains(err.Error(), "bad magic") {
		t.Fatalf("receive of a corrupt record: %v", err)
	}
}

// Taking the record at head moves head past it and past the records
// after it already taken, and stops at the next live one.
func TestTakeAtHeadAdvances(t *testing.T) {
	q := newTestQueue(t, QueueConfig{Capacity: Unbounded})
	var pos []uint64
	for _, typ := range []string{"a", "b", "c", "a"} {
		pos = append(pos, q.h.tail.Load())
		mustSend(t, q, &Message{Type: typ, Body: []byte(typ)})
	}
	if m := mustReceive(t, q, Filter{ByType: true, Type: "b"}); m.Type != "b" || q.h.head.Load() != pos[0] {
		t.Fatalf("took %q, head %d: want b, head %d", m.Type, q.h.head.Load(), pos[0])
	}
	if m := mustReceive(t, q, Filter{ByType: true, Type: "c"}); m.Type != "c" || q.h.head.Load() != pos[0] {
		t.Fatalf("took %q, head %d: want c, head %d", m.Type, q.h.head.Load(), pos[0])
	}
	if m := mustReceive(t, q, Filter{}); m.Type != "a" || q.h.head.Load() != pos[3] {
		t.Fatalf("took %q, head %d: want a, head %d (past the taken b and c)", m.Type, q.h.head.Load(), pos[3])
	}
	if live := checkQueue(t, q); len(live) != 1 {
		t.Fatalf("%d live, want 1", len(live))
	}
}

// A ring whose size is not a power of two (no mask: at divides) wraps
// with pad records like one that is; at agrees with % for both.
func TestQueueRingNotPowerOfTwo(t *testing.T) {
	for _, size := range []int{3 * 4096, 4 * 4096} {
		q := newTestQueue(t, QueueConfig{Capacity: Unbounded, Bytes: size})
		if (q.mask != 0) != (size&(size-1) == 0) {
			t.Fatalf("ring of %d: mask %#x", size, q.mask)
		}
		for _, p := range []uint64{0, 1, q.size - 1, q.size, q.size + 8, 7*q.size + 4096, 1<<40 + 3} {
			if q.at(p) != p%q.size {
				t.Fatalf("ring of %d: at(%d) = %d", size, p, q.at(p))
			}
		}
		wrapRounds(t, q, 300, bytes.Repeat([]byte("0123456789"), 100), false)
		checkQueue(t, q)
	}
}

// A backlog that grows (two sends for each receive) never finds an
// unbounded queue full while the ring has bytes: a send goes back to the
// ring's start only with room there for more than is queued. Once the
// queue drains, sends reuse the ring's start again.
func TestQueueBacklogWalksOn(t *testing.T) {
	q := newTestQueue(t, QueueConfig{Capacity: Unbounded, Bytes: 4 << 20})
	body := make([]byte, 1000)
	var m Message
	var sent, recv uint64
	for q.Len() < 1000 { // a quarter of the ring queued
		for range 2 {
			if err := q.Send(&Message{Seq: sent, Body: body}, nb); err != nil {
				t.Fatalf("send %d with %d queued: %v", sent, q.Len(), err)
			}
			sent++
		}
		if err := q.Receive(Filter{}, nb, &m); err != nil || m.Seq != recv {
			t.Fatalf("receive: %v, seq %d, want %d", err, m.Seq, recv)
		}
		recv++
	}
	for ; recv < sent; recv++ {
		if err := q.Receive(Filter{}, nb, &m); err != nil || m.Seq != recv {
			t.Fatalf("receive: %v, seq %d, want %d", err, m.Seq, recv)
		}
	}
	for i := 0; i < 2000; i++ {
		mustSend(t, q, &Message{Body: body})
		mustSend(t, q, &Message{Body: body})
		mustReceive(t, q, Filter{})
		mustReceive(t, q, Filter{})
		if off := q.at(q.h.tail.Load()); i > 500 && off > rewindAt+4096 {
			t.Fatalf("tail at ring offset %d after %d rounds of steady traffic: no rewind", off, i)
		}
	}
	checkQueue(t, q)
}
