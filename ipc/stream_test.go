package ipc

import (
	"bytes"
	"testing"
	"time"
)

// TestStreamReadInto: ReadInto reads into the caller's slice, as Read
// returns a new one: large reads straight from the kernel, small ones
// through the buffer, what came before a timeout kept for the next read,
// fewer bytes only at the end, then ErrEOF.
func TestStreamReadInto(t *testing.T) {
	rf, wf, err := NewPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewStream("pipe", "p", rf)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := NewStream("pipe", "p", wf)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 200000)
	if _, err := r.ReadInto(p[:1], WaitOpts{NonBlocking: true}); err != ErrEmpty {
		t.Fatalf("non-blocking read of an empty pipe: %v", err)
	}
	w.WriteString("abcdef", WaitOpts{})
	if n, err := r.ReadInto(p[:2], WaitOpts{}); n != 2 || err != nil || string(p[:2]) != "ab" {
		t.Fatalf("small read: %d %v %q", n, err, p[:2])
	}
	// A large read with a timeout: the 4 bytes there stay for the next read.
	if _, err := r.ReadInto(p[:100000], WaitOpts{Timeout: 20 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("large read with a timeout: %v", err)
	}
	if n, err := r.ReadInto(p[:10], WaitOpts{NonBlocking: true}); n != 4 || err != nil || string(p[:4]) != "cdef" {
		t.Fatalf("what came before the timeout: %d %v %q", n, err, p[:n])
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160000 bytes
	go func() { w.Write(big, WaitOpts{}); w.WriteString("tail", WaitOpts{}); w.Close() }()
	if n, err := r.ReadInto(p[:len(big)], WaitOpts{}); n != len(big) || err != nil || !bytes.Equal(p[:n], big) {
		t.Fatalf("large read: %d %v", n, err)
	}
	if n, err := r.ReadInto(p[:65536], WaitOpts{}); n != 4 || err != nil || string(p[:4]) != "tail" {
		t.Fatalf("short read at the end: %d %v %q", n, err, p[:n])
	}
	if _, err := r.ReadInto(p[:65536], WaitOpts{}); err != ErrEOF {
		t.Fatalf("read at the end: %v", err)
	}
	if _, err := r.ReadInto(p[:1], WaitOpts{}); err != ErrEOF {
		t.Fatalf("small read at the end: %v", err)
	}
}
