package ipc

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStreamReadInto: ReadInto reads into the caller's slice, as Read
// returns a new one: large reads straight from the kernel, small ones
// through the buffer, what came before a timeout kept for the next read,
// fewer bytes only at the end, then ErrEOF.
func TestStreamReadInto(t *testing.T) {
	r, w := pipeStreams(t)
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

// With SetHoldP, blocking reads and writes wait for the descriptor in a
// held poll: every byte still arrives, in order, through a pipe and a
// socket pair, with the reader and the writer each waiting on the other.
// Waits that outlast holdMax holdLong times in a row stop holding until
// one is short.
func TestStreamHeldWaits(t *testing.T) {
	defer SetHoldP(holdP.Load())
	SetHoldP(true)
	pipe := func() (*Stream, *Stream) {
		rf, wf, err := NewPipe()
		if err != nil {
			t.Fatal(err)
		}
		r, _ := NewStream("pipe", "p", rf)
		w, _ := NewStream("pipe", "p", wf)
		return r, w
	}
	pair := func() (*Stream, *Stream) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := NewStream("unix", "a", os.NewFile(uintptr(fds[0]), "a"))
		w, _ := NewStream("unix", "b", os.NewFile(uintptr(fds[1]), "b"))
		return r, w
	}
	for name, mk := range map[string]func() (*Stream, *Stream){"pipe": pipe, "unix": pair} {
		r, w := mk()
		const chunk, chunks = 65536, 64
		data := make([]byte, chunk)
		done := make(chan error, 1)
		go func() {
			for i := range chunks {
				for j := range data {
					data[j] = byte(i + j)
				}
				if n, err := w.Write(data, WaitOpts{}); n != chunk || err != nil {
					done <- fmt.Errorf("write %d: %d %v", i, n, err)
					return
				}
			}
			done <- w.Close()
		}()
		p := make([]byte, chunk)
		for i := range chunks {
			n, err := r.ReadInto(p, WaitOpts{})
			if n != chunk || err != nil {
				t.Fatalf("%s: read %d: %d %v", name, i, n, err)
			}
			for j := range p {
				if p[j] != byte(i+j) {
					t.Fatalf("%s: chunk %d byte %d is %d, want %d", name, i, j, p[j], byte(i+j))
				}
			}
		}
		if _, err := r.ReadInto(p, WaitOpts{}); err != ErrEOF {
			t.Fatalf("%s: read at the end: %v", name, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r.Close()
	}

	// Long waits: a held wait that nobody ends gives up after holdMax
	// (ended by sysmon's preemption signal, or by the ppoll's timeout
	// without asynchronous preemption); holdLong of them in a row turn
	// holding off, and a short wait turns it back on. A read that outlasts
	// the hold still gets its bytes.
	defer func(on bool) { preemptSignals = on }(preemptSignals)
	for _, signals := range []bool{true, false} {
		preemptSignals = signals
		heldLongWaits(t, pipe)
	}
}

func heldLongWaits(t *testing.T, pipe func() (*Stream, *Stream)) {
	r, w := pipe()
	defer r.Close()
	defer w.Close()
	for i := range holdLong {
		if r.waitHeld(unix.POLLIN) {
			t.Fatalf("held wait %d on an empty pipe: ready", i)
		}
		if r.long != int32(i+1) {
			t.Fatalf("after held wait %d: %d long waits in a row, want %d", i, r.long, i+1)
		}
	}
	if r.holding() {
		t.Fatal("still holding after holdLong long waits")
	}
	w.WriteString("x", WaitOpts{})
	if b, err := r.Read(1, WaitOpts{}); err != nil || string(b) != "x" || r.long != 0 || !r.holding() {
		t.Fatalf("short wait: %q %v, %d long waits in a row", b, err, r.long)
	}
	go func() {
		time.Sleep(3 * holdMax)
		w.WriteString("y", WaitOpts{})
	}()
	if b, err := r.Read(1, WaitOpts{}); err != nil || string(b) != "y" {
		t.Fatalf("a read that outlasts the hold: %q %v", b, err)
	}
}

// GODEBUG's asyncpreemptoff decides whether a held wait may leave its end
// to sysmon's preemption signal: the last setting wins, 0 is on.
func TestAsyncPreemptOff(t *testing.T) {
	for godebug, off := range map[string]bool{
		"": false, "asyncpreemptoff=1": true, "gctrace=1,asyncpreemptoff=1": true,
		"asyncpreemptoff=0": false, "asyncpreemptoff=1,asyncpreemptoff=0": false, "xasyncpreemptoff=1": false,
	} {
		if got := asyncPreemptOff(godebug); got != off {
			t.Errorf("GODEBUG=%q: asyncPreemptOff %v, want %v", godebug, got, off)
		}
	}
}
