package ipc

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

var sample = &Message{Type: "order", Src: -1, Dst: 0x01020304, Seq: 0x1122334455667788, Time: -2, Flags: 0xa55a, Body: []byte("hi")}

// TestHeaderLayout pins the documented byte layout: other languages read it.
func TestHeaderLayout(t *testing.T) {
	got := hex.EncodeToString(AppendMessage(nil, sample))
	want := "494d" + "01" + "00" + "5aa5" + "0500" + "02000000" + // magic, version, reserved, flags, type len, body len
		"ffffffff" + "04030201" + "00000000" + // src, dst, reserved
		"8877665544332211" + "feffffffffffffff" + // seq, time
		hex.EncodeToString([]byte("orderhi"))
	if got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	b := AppendMessage([]byte("prefix"), sample)
	if string(b[:6]) != "prefix" || len(b) != 6+sample.EncodedLen() {
		t.Fatalf("AppendMessage: %q", b)
	}
	var m Message
	if err := DecodeMessage(b[6:], &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != sample.Type || m.Src != sample.Src || m.Dst != sample.Dst || m.Seq != sample.Seq ||
		m.Time != sample.Time || m.Flags != sample.Flags || !bytes.Equal(m.Body, sample.Body) {
		t.Fatalf("got %+v", m)
	}
	// Trailing or missing bytes are refused.
	if err := DecodeMessage(b[6:len(b)-1], &m); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("short: %v", err)
	}
	if err := DecodeMessage(append(b[6:], 0), &m); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("long: %v", err)
	}
}

func TestDecodeHeaderRejects(t *testing.T) {
	good := AppendMessage(nil, sample)[:HeaderSize]
	mod := func(off int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], v)
		return b
	}
	for _, tc := range []struct {
		name    string
		b       []byte
		tooLong bool
	}{
		{"empty", nil, false},
		{"short", good[:HeaderSize-1], false},
		{"magic", mod(0, 'X'), false},
		{"version", mod(2, 2), false},
		{"reserved3", mod(3, 1), false},
		{"reserved20", mod(20, 1), false},
		{"type 256", mod(6, 0x00, 0x01), true},
		{"type 65535", mod(6, 0xff, 0xff), true},
		{"body 2^32-1", mod(8, 0xff, 0xff, 0xff, 0xff), true},
		{"body just over", mod(6, 5, 0, 0xfc, 0xff, 0x7f, 0x00), true}, // 5 + 8 MiB - 4
	} {
		_, err := DecodeHeader(tc.b)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
		} else if errors.Is(err, ErrTooLarge) != tc.tooLong {
			t.Errorf("%s: %v (ErrTooLarge %v)", tc.name, err, errors.Is(err, ErrTooLarge))
		}
	}
	// The limit itself is accepted.
	h, err := DecodeHeader(mod(6, 5, 0, 0xfb, 0xff, 0x7f, 0x00))
	if err != nil || h.Size() != MaxMessageSize {
		t.Fatalf("largest: %v %d", err, h.Size())
	}
}

func TestMessageCheck(t *testing.T) {
	if err := (&Message{Type: strings.Repeat("x", 255), Body: make([]byte, MaxMessageSize-255)}).Check(); err != nil {
		t.Fatalf("limit refused: %v", err)
	}
	err := (&Message{Type: "x", Body: make([]byte, MaxMessageSize)}).Check()
	if !errors.Is(err, ErrTooLarge) || err.Error() != "message of 8388609 bytes exceeds the 8 MiB limit" {
		t.Fatalf("oversize: %v", err)
	}
	if err := (&Message{Type: strings.Repeat("x", 256)}).Check(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long type: %v", err)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	msgs := []*Message{
		sample,
		{},
		{Type: "big", Src: 1, Body: bytes.Repeat([]byte{7}, smallFrame*3)}, // written in two writes
		{Type: strings.Repeat("t", MaxTypeLen), Body: []byte("x")},
	}
	go func() {
		for _, m := range msgs {
			if err := WriteFrame(a, m); err != nil {
				t.Error(err)
			}
		}
		a.Close()
	}()
	r := bufio.NewReader(b)
	var m Message
	for i, want := range msgs {
		if err := ReadFrame(r, &m); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if m.Type != want.Type || m.Src != want.Src || m.Seq != want.Seq || !bytes.Equal(m.Body, want.Body) {
			t.Fatalf("frame %d: got %+v", i, m)
		}
	}
	if err := ReadFrame(r, &m); err != ErrEOF {
		t.Fatalf("at end: %v, want ErrEOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	var buf bytes.Buffer
	WriteFrame(&buf, sample)
	whole := buf.Bytes()
	var m Message
	for n := 1; n < len(whole); n++ {
		if err := ReadFrame(bytes.NewReader(whole[:n]), &m); err != io.ErrUnexpectedEOF {
			t.Fatalf("truncated at %d: %v, want io.ErrUnexpectedEOF", n, err)
		}
	}
	if err := ReadFrame(bytes.NewReader(nil), &m); err != ErrEOF {
		t.Fatalf("empty: %v, want ErrEOF", err)
	}
	// An oversize length is refused before anything more is read.
	huge := []byte{0xff, 0xff, 0xff, 0x7f}
	r := bytes.NewReader(append(huge, make([]byte, 100)...))
	if err := ReadFrame(r, &m); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge length: %v", err)
	}
	if r.Len() != 100 {
		t.Fatalf("read %d bytes past an oversize length", 100-r.Len())
	}
	if err := ReadFrame(bytes.NewReader([]byte{3, 0, 0, 0, 1, 2, 3}), &m); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("tiny length: %v", err)
	}
	bad := bytes.Clone(whole)
	bad[0]++ // length disagrees with the header
	if err := ReadFrame(bytes.NewReader(bad), &m); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("length mismatch: %v", err)
	}
	if err := WriteFrame(&buf, &Message{Body: make([]byte, MaxMessageSize+1)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize write: %v", err)
	}
}

func TestFrameNoAllocs(t *testing.T) {
	var buf bytes.Buffer
	m := &Message{Type: "t", Body: make([]byte, 64)}
	r := bytes.NewReader(nil)
	out := Message{Body: make([]byte, 0, 512)}
	WriteFrame(&buf, m) // warm the pool
	allocs := testing.AllocsPerRun(1000, func() {
		buf.Reset()
		if err := WriteFrame(&buf, m); err != nil {
			t.Fatal(err)
		}
		r.Reset(buf.Bytes())
		if err := ReadFrame(r, &out); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame, want 0", allocs)
	}
}
