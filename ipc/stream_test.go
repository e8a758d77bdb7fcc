package ipc

import (
	"bytes"
	"fmt"
	"os"
	"sync"
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
	// A pipe's held waits go through io_uring where there is one (heldRW),
	// and through ppoll where there is none (uringOff): both ways.
	defer uringOff.Store(uringOff.Load())
	for name, mk := range map[string]func() (*Stream, *Stream){"pipe": pipe, "unix": pair, "pipe without io_uring": pipe} {
		uringOff.Store(name == "pipe without io_uring")
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

// A held pipe read or write in one io_uring_enter (heldRW): a request that
// nobody completes is cancelled when sysmon's signal ends the wait, gives
// up after holdMax (counted as a long wait) and takes nothing: the bytes
// written later go to the next read, whole.
func TestStreamHeldRWCancelled(t *testing.T) {
	defer SetHoldP(holdP.Load())
	SetHoldP(true)
	r, w := pipeStreams(t)
	defer w.Close()
	p := make([]byte, 8)
	n, errno, how := r.heldRW(uringOpRead, p)
	if how == rwNo {
		t.Skip("no io_uring here")
	}
	if how != rwLong || n != 0 || errno != 0 || r.long != 1 {
		t.Fatalf("held read of an empty pipe: %d %v, how %d, %d long waits; want nothing, rwLong, 1", n, errno, how, r.long)
	}
	if _, err := w.WriteString("abcdefgh", WaitOpts{}); err != nil {
		t.Fatal(err)
	}
	n, errno, how = r.heldRW(uringOpRead, p)
	if how != rwDone || n != 8 || errno != 0 || string(p) != "abcdefgh" || r.long != 0 {
		t.Fatalf("held read after a write: %d %q %v, how %d, %d long waits", n, p[:n], errno, how, r.long)
	}
	// A pipe someone made non-blocking: a blocking read still waits for
	// its bytes (io_uring polls it; where it says EAGAIN, the ordinary
	// wait does).
	if err := unix.SetNonblock(r.Fd(), true); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(holdMax / 2)
		w.WriteString("12345678", WaitOpts{})
	}()
	if n, err := r.ReadInto(p, WaitOpts{}); n != 8 || err != nil || string(p) != "12345678" {
		t.Fatalf("read of a non-blocking pipe: %d %q %v", n, p[:n], err)
	}
}

// Several held writers on one pipe (each its own Stream on its own
// descriptor, as processes that inherited it), writing more than the
// pipe holds: every write of at most PIPE_BUF bytes arrives whole and
// each writer's in order, and every byte of the larger writes arrives.
func TestStreamHeldWritersShareAPipe(t *testing.T) {
	defer SetHoldP(holdP.Load())
	SetHoldP(true)
	const writers, records, big = 4, 300, 3 * 65536
	r, done := pipeWriters(t, writers, func(id int, w *Stream) error {
		return writeRecords(id, records, w)
	})
	readRecords(t, r, writers, records, done)

	// Writes larger than the pipe, from each writer: every byte comes,
	// each writer's bytes their own count.
	r, done = pipeWriters(t, writers, func(id int, w *Stream) error {
		b := bytes.Repeat([]byte{byte('a' + id)}, big)
		for range 4 {
			if n, err := w.Write(b, WaitOpts{}); n != big || err != nil {
				return fmt.Errorf("writer %d: %d %v", id, n, err)
			}
		}
		return nil
	})
	counts := make([]int, writers)
	p := make([]byte, 65536)
	for {
		n, err := r.ReadInto(p, WaitOpts{})
		if err == ErrEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range p[:n] {
			counts[c-'a']++
		}
	}
	for id, c := range counts {
		if c != 4*big {
			t.Errorf("writer %d: %d bytes came, want %d", id, c, 4*big)
		}
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// pipeWriters makes a pipe and starts writers goroutines, each writing
// with write through its own Stream on its own descriptor (as processes
// that inherited the pipe) and closing it after: the pipe's read end
// (closed at the test's end; it reads the end once every writer is done),
// and where each writer's result comes.
func pipeWriters(t *testing.T, writers int, write func(id int, w *Stream) error) (*Stream, chan error) {
	t.Helper()
	r, w0 := pipeStreams(t)
	return r, writersOn(t, w0, writers, write)
}

// writersOn starts writers goroutines, each writing with write through its
// own Stream on a duplicate of w0's descriptor, and closes w0; each sends
// write's result on the returned channel.
func writersOn(t *testing.T, w0 *Stream, writers int, write func(id int, w *Stream) error) chan error {
	t.Helper()
	done := make(chan error, writers)
	for id := range writers {
		fd, err := unix.Dup(w0.Fd())
		if err != nil {
			t.Fatal(err)
		}
		w, _ := NewStream("pipe", "p", os.NewFile(uintptr(fd), "w"))
		go func() {
			defer w.Close()
			done <- write(id, w)
		}()
	}
	w0.Close()
	return done
}

// writeRecords writes records records of PIPE_BUF bytes as writer id: 'R',
// id, the record's number, then a byte of both.
func writeRecords(id, records int, w *Stream) error {
	rec := make([]byte, PipeBuf)
	for i := range records {
		rec[0], rec[1], rec[2] = 'R', byte(id), byte(i)
		for j := 3; j < len(rec); j++ {
			rec[j] = byte(id*31 + i)
		}
		if n, err := w.Write(rec, WaitOpts{}); n != len(rec) || err != nil {
			return fmt.Errorf("writer %d record %d: %d %v", id, i, n, err)
		}
	}
	return nil
}

// readRecords reads what writers writeRecords wrote through r: every
// record whole (not torn) and each writer's in order, then EOF; and each
// writer's result from done.
func readRecords(t *testing.T, r *Stream, writers, records int, done chan error) {
	t.Helper()
	next := make([]int, writers)
	rec := make([]byte, PipeBuf)
	for k := range writers * records {
		if n, err := r.ReadInto(rec, WaitOpts{}); n != len(rec) || err != nil {
			t.Fatalf("record %d: %d %v", k, n, err)
		}
		id, i := int(rec[1]), int(rec[2])
		if rec[0] != 'R' || id >= writers || byte(next[id]) != byte(i) {
			t.Fatalf("record %d: header %q %d %d, writer's next %d", k, rec[0], id, i, next[id])
		}
		for j := 3; j < len(rec); j++ {
			if rec[j] != byte(id*31+i) {
				t.Fatalf("record %d (writer %d, %d): byte %d is %d: torn", k, id, i, j, rec[j])
			}
		}
		next[id]++
	}
	if _, err := r.ReadInto(rec[:1], WaitOpts{}); err != ErrEOF {
		t.Fatalf("after every record: %v, want ErrEOF", err)
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// pipeSize is the pipe's capacity (F_GETPIPE_SZ).
func pipeSize(t *testing.T, s *Stream) int {
	t.Helper()
	n, err := unix.FcntlInt(uintptr(s.Fd()), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A pipe grows to pipeBulkSize at the first large blocking write, once:
// not for small writes nor for large ones that must not wait, never
// shrinks one that holds more already; every byte of the large writes
// comes, in order, and records of PIPE_BUF bytes from several writers on
// the grown pipe still come whole and each writer's in order.
func TestStreamGrowPipe(t *testing.T) {
	r, w := pipeStreams(t)
	before := pipeSize(t, w)
	if before >= pipeBulkSize {
		t.Skipf("pipes here start with %d bytes", before)
	}
	for range 3 {
		if _, err := w.Write(bytes.Repeat([]byte("s"), streamBufSize/2-1), WaitOpts{}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadInto(make([]byte, streamBufSize/2-1), WaitOpts{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Write(bytes.Repeat([]byte("n"), streamBufSize/2), WaitOpts{NonBlocking: true}); err != nil {
		t.Fatal(err)
	}
	if n := pipeSize(t, w); n != before || w.grown {
		t.Fatalf("after small and non-blocking writes: %d bytes (grown %v), want %d", n, w.grown, before)
	}
	if _, err := r.ReadInto(make([]byte, streamBufSize/2), WaitOpts{}); err != nil {
		t.Fatal(err)
	}

	// Large blocking writes, more than the grown pipe holds, with a reader.
	const chunk, chunks = 64 << 10, 16
	done := make(chan error, 1)
	go func() {
		b := make([]byte, chunk)
		for i := range chunks {
			for j := range b {
				b[j] = byte(i + j/4096)
			}
			if n, err := w.Write(b, WaitOpts{}); n != chunk || err != nil {
				done <- fmt.Errorf("chunk %d: %d %v", i, n, err)
				return
			}
		}
		done <- nil
	}()
	p := make([]byte, chunk)
	for i := range chunks {
		if n, err := r.ReadInto(p, WaitOpts{}); n != chunk || err != nil {
			t.Fatalf("chunk %d: %d %v", i, n, err)
		}
		for j, c := range p {
			if c != byte(i+j/4096) {
				t.Fatalf("chunk %d byte %d: %d, want %d", i, j, c, byte(i+j/4096))
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := pipeSize(t, r); n != pipeBulkSize || !w.grown {
		t.Fatalf("after large writes: %d bytes (grown %v), want %d", n, w.grown, pipeBulkSize)
	}

	// Records on the grown pipe, from several writers at once.
	const writers, records = 4, 300
	done = writersOn(t, w, writers, func(id int, w *Stream) error {
		return writeRecords(id, records, w)
	})
	readRecords(t, r, writers, records, done)

	// A pipe that holds more already is left as it is.
	r2, w2 := pipeStreams(t)
	defer w2.Close()
	if _, err := unix.FcntlInt(uintptr(w2.Fd()), unix.F_SETPIPE_SZ, 2*pipeBulkSize); err != nil {
		t.Skip("F_SETPIPE_SZ:", err)
	}
	if _, err := w2.Write(make([]byte, chunk), WaitOpts{}); err != nil {
		t.Fatal(err)
	}
	if n := pipeSize(t, r2); n != 2*pipeBulkSize {
		t.Fatalf("a pipe of %d bytes after a large write: %d", 2*pipeBulkSize, n)
	}
}

// A held read that follows one that filled its slice reads what is queued
// without a held wait (a ppoll, or an io_uring request on a pipe) first:
// chunks queued before the reads are read with no held wait, whole and in
// order; a read that finds nothing queued waits held and gets the bytes
// written later. On a unix socket, a pipe, and a pipe without io_uring.
func TestStreamHeldReadsQueued(t *testing.T) {
	defer SetHoldP(holdP.Load())
	SetHoldP(true)
	defer uringOff.Store(uringOff.Load())
	pair := func() (*Stream, *Stream) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
		r, _ := NewStream("unix", "a", os.NewFile(uintptr(fds[0]), "a"))
		w, _ := NewStream("unix", "b", os.NewFile(uintptr(fds[1]), "b"))
		return r, w
	}
	pipe := func() (*Stream, *Stream) {
		r, w := pipeStreams(t)
		if _, err := unix.FcntlInt(uintptr(w.Fd()), unix.F_SETPIPE_SZ, 256<<10); err != nil {
			t.Skip("F_SETPIPE_SZ:", err)
		}
		return r, w
	}
	for _, c := range []struct {
		name string
		mk   func() (*Stream, *Stream)
	}{{"unix", pair}, {"pipe", pipe}, {"pipe without io_uring", pipe}} {
		uringOff.Store(c.name == "pipe without io_uring")
		r, w := c.mk()
		const chunk, chunks = 32 << 10, 4
		b := make([]byte, chunk)
		for i := range chunks {
			for j := range b {
				b[j] = byte(i*7 + j)
			}
			if n, err := w.Write(b, WaitOpts{NonBlocking: true}); n != chunk || err != nil {
				t.Fatalf("%s: queueing chunk %d: %d %v", c.name, i, n, err)
			}
		}
		p := make([]byte, chunk)
		for i := range chunks {
			if n, err := r.ReadInto(p, WaitOpts{}); n != chunk || err != nil {
				t.Fatalf("%s: chunk %d: %d %v", c.name, i, n, err)
			}
			for j, x := range p {
				if x != byte(i*7+j) {
					t.Fatalf("%s: chunk %d byte %d: %d, want %d", c.name, i, j, x, byte(i*7+j))
				}
			}
		}
		// The first read may wait held (nothing said more was there);
		// the others read what was queued.
		if r.heldWaits > 1 {
			t.Fatalf("%s: %d held waits for %d queued chunks, want at most 1", c.name, r.heldWaits, chunks)
		}
		// The chunk is written only once the read is in its held wait
		// (the hook), so the read must wait: a writer that merely slept
		// first could be late for a reader that a loaded machine delayed
		// longer still.
		waiting := make(chan struct{})
		var once sync.Once
		testHook = func(p hookPoint) {
			if p == hookStreamHeld {
				once.Do(func() { close(waiting) })
			}
		}
		wrote := make(chan error, 1)
		go func() {
			select {
			case <-waiting:
			case <-time.After(time.Minute): // no held wait: the check below says so
			}
			_, err := w.Write(bytes.Repeat([]byte("z"), chunk), WaitOpts{})
			wrote <- err
		}()
		before := r.heldWaits
		n, err := r.ReadInto(p, WaitOpts{})
		werr := <-wrote
		testHook = nil // the writer is done with it
		if n != chunk || err != nil || p[0] != 'z' || p[chunk-1] != 'z' {
			t.Fatalf("%s: a read that waits: %d %v", c.name, n, err)
		}
		if werr != nil {
			t.Fatalf("%s: the write the read waited for: %v", c.name, werr)
		}
		if r.heldWaits == before {
			t.Fatalf("%s: a read of an empty stream did not wait held", c.name)
		}
		r.Close()
		w.Close()
	}
}
