package ipc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Stream is a byte stream over a pipe end, an open FIFO or a connected
// socket: every byte stream of a run (a Lua pipe, FIFO stream or socket
// connection, one received in a message) is one. Reads are buffered (Read,
// ReadLine, ReadAll share one buffer); writes go straight to the kernel.
//
// Waiting. The descriptor is used in blocking mode, without Go's poller: a
// read or write that must wait is a plain read(2) or write(2) that sleeps
// in the kernel, the fastest path between processes (one system call per
// read once data comes: no EAGAIN round, no epoll, no goroutine switch).
// O_NONBLOCK belongs to the open file description, which a pipe end or a
// FIFO shares with other processes (an exec'd program's stdin, a process
// that received it in a message), so a Stream never changes it on a
// descriptor it did not open itself; when it finds one non-blocking, a
// call that says EAGAIN waits in poll(2) and tries again. Timeouts and
// NonBlocking never block in a read or write: they wait in Poll (the one
// EINTR-safe poll) and ask the kernel not to wait (MSG_DONTWAIT on a socket,
// RWF_NOWAIT on a pipe; a FIFO that refuses RWF_NOWAIT reads after poll
// says it is readable and writes at most PIPE_BUF bytes after poll says
// there is room). A blocking wait is recorded in the status slot before
// the system call (it cannot be known to wait beforehand), a timed one
// when it polls.
//
// Copies. Read(n) reads from the kernel straight into the slice it returns
// once the buffer is drained, ReadInto into the caller's slice; ReadAll hands its buffer over instead of
// copying it; Write and WriteString write the caller's bytes as they are. The
// slices returned are always the caller's own (never aliased by the
// Stream), so a binding may turn them into strings with unsafe.String.
//
// A Stream is for one reading goroutine and one writing goroutine at a
// time. Close does not wake a goroutine blocked in a read or write of it
// (the descriptor is blocking): close the other end, or use a timeout.
type Stream struct {
	kind, name string
	what       string // names the stream in errors: `pipe "jobs"`
	f          *os.File
	fd         int
	sock       bool   // a socket: MSG_DONTWAIT says not to wait
	noNowait   bool   // a pipe that refused RWF_NOWAIT (a FIFO opened by path)
	owned      bool   // its open file description is this Stream's alone (ownedFile)
	more       bool   // the last blocking read filled its slice: the next one tries without waiting first
	long       int32  // held waits in a row that outlasted holdMax (waitHeld)
	full       bool   // the last write found no room: the next one waits for room first
	waited     bool   // the last waitHeld did not find the descriptor ready at once
	grown      bool   // a large write tried to grow the pipe (growPipe)
	heldWaits  int    // waitHeld and heldRW calls that held (tests count them)
	buf        []byte // read buffer; unread bytes are buf[r:w]
	r, w       int
	closed     atomic.Bool
	ws         *WaitStatus
	id         int32
	peer       func() int32 // the one process that can write to it, if known
	pfd        [1]unix.PollFd
}

const (
	streamBufSize = 64 << 10
	// MaxLineSize bounds a line ReadLine will buffer.
	MaxLineSize = 64 << 20
	// PipeBuf is PIPE_BUF on Linux: a pipe or FIFO write of at most this
	// many bytes is atomic.
	PipeBuf = 4096
)

// NewStream wraps f, a pipe end, FIFO or connected socket, as it is (its
// file status flags are left alone). kind and name make the errors
// ("pipe", "jobs" -> `pipe "jobs": read: ...`; see SetWhat). The Stream owns
// f from then on.
func NewStream(kind, name string, f *os.File) (*Stream, error) {
	if f == nil {
		return nil, fmt.Errorf("%s %q: no descriptor", kind, name)
	}
	return newStream(kind, name, f)
}

func newStream(kind, name string, f *os.File) (*Stream, error) {
	s := &Stream{kind: kind, name: name, what: fmt.Sprintf("%s %q", kind, name), f: f, id: -1}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, s.errorf("open", "%v", err)
	}
	// Control, not Fd: Fd would switch a pollable file to blocking mode.
	rc.Control(func(fd uintptr) { s.fd = int(fd) })
	var st unix.Stat_t
	if err := unix.Fstat(s.fd, &st); err != nil {
		f.Close()
		return nil, s.errorf("open", "%v", os.NewSyscallError("fstat", err))
	}
	s.sock = st.Mode&unix.S_IFMT == unix.S_IFSOCK
	return s, nil
}

// ownedFile makes a *os.File of a descriptor this package just made
// (accept, connect, open of a FIFO), switching it to blocking mode first:
// its open file description is the Stream's alone (newOwnedStream).
func ownedFile(fd int, name string) (*os.File, error) {
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// newOwnedStream is newStream for a file made by ownedFile.
func newOwnedStream(kind, name string, f *os.File) (*Stream, error) {
	s, err := newStream(kind, name, f)
	if err == nil {
		s.owned = true
	}
	return s, err
}

// NewPipe makes a pipe whose ends are close-on-exec and blocking, ready
// for Streams and for children (ExtraFiles, an exec'd program's stdin).
func NewPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

func (s *Stream) errorf(op, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %s", s.what, op, fmt.Sprintf(format, args...))
}

// SetWhat sets how errors name the stream (`pipe at x.lua:3`), instead of
// kind and name.
func (s *Stream) SetWhat(what string) { s.what = what }

// SetStatus makes the stream record its blocking waits in ws under the
// given object id (nil: don't record).
func (s *Stream) SetStatus(ws *WaitStatus, object int32) { s.ws, s.id = ws, object }

// SetPeer gives the pid of the one process that can write to the stream
// (a pipe's `from`), for the status slot of a read that waits.
func (s *Stream) SetPeer(peer func() int32) { s.peer = peer }

// File is the stream's descriptor (to hand to a child through ExtraFiles or
// in a message). Do not call its Fd method to poll it: use Stream.Fd.
func (s *Stream) File() *os.File { return s.f }

// Fd is the descriptor number, for poll(2) in select.
func (s *Stream) Fd() int { return s.fd }

// Kind is the kind the stream was made with: "pipe", "fifo", "tcp", ...
func (s *Stream) Kind() string { return s.kind }

// Buffered is the number of bytes read from the kernel and not yet
// returned: a select must treat a stream with Buffered() > 0 as readable
// whatever poll says.
func (s *Stream) Buffered() int { return s.w - s.r }

// Close closes the descriptor; later calls on the stream say it is closed.
func (s *Stream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return s.errorf("close", "%v", err)
	}
	return nil
}

// CloseWrite shuts down the sending side of a socket stream: the peer reads
// EOF while this side can still read.
func (s *Stream) CloseWrite() error {
	if s.closed.Load() {
		return s.closedError("close")
	}
	if err := unix.Shutdown(s.fd, unix.SHUT_WR); err != nil {
		return s.errorf("close", "shutdown: %v", err)
	}
	return nil
}

func (s *Stream) closedError(op string) error {
	return s.errorf(op, "%s is closed", s.kind)
}

// Read reads n bytes, waiting until all n have come or the stream ends (as
// Lua's file:read(n)): at the end it returns the bytes there were, or
// ErrEOF if there were none. NonBlocking returns what is there now, ErrEmpty
// if nothing is. On ErrTimeout the bytes that did come stay buffered for the
// next read. Read(0) returns an empty slice, or ErrEOF at the end.
func (s *Stream) Read(n int, o WaitOpts) ([]byte, error) {
	if n < 0 {
		return nil, s.errorf("read", "byte count %d is negative", n)
	}
	deadline := o.Deadline()
	if s.direct(n, o) {
		out := make([]byte, n)
		k, err := s.readDirect(out, deadline)
		if err != nil {
			return nil, err
		}
		return out[:k], nil
	}
	k, err := s.buffer(n, o.NonBlocking, deadline)
	if err != nil {
		return nil, err
	}
	out := make([]byte, k)
	s.r += copy(out, s.buf[s.r:s.r+k])
	s.ws.Done()
	return out, nil
}

// ReadInto is Read into p, memory the caller owns: it reads len(p) bytes
// into p, waiting until all have come or the stream ends, and returns how
// many it read (fewer only at the end, or with NonBlocking: what is there
// now), ErrEOF when the stream had ended, ErrEmpty / ErrTimeout as Read.
// Nothing is allocated: a large read goes from the kernel straight into
// p, a small one through the Stream's buffer. After an error p's bytes are
// undefined (those that came stay buffered for the next read).
func (s *Stream) ReadInto(p []byte, o WaitOpts) (int, error) {
	deadline := o.Deadline()
	if s.direct(len(p), o) {
		return s.readDirect(p, deadline)
	}
	k, err := s.buffer(len(p), o.NonBlocking, deadline)
	if err != nil {
		return 0, err
	}
	s.r += copy(p, s.buf[s.r:s.r+k])
	s.ws.Done()
	return k, nil
}

// direct says whether a read of n bytes goes from the kernel straight into
// the caller's memory: a large one that the buffer does not hold already
// and that may wait.
func (s *Stream) direct(n int, o WaitOpts) bool {
	return n >= streamBufSize/2 && s.Buffered() < n && !o.NonBlocking
}

// buffer fills the buffer until it holds n bytes (at least one for n = 0),
// the stream ends, or (nonBlocking) nothing more is there now, and returns
// how many of them a read of n takes: ErrEOF / ErrEmpty when none.
func (s *Stream) buffer(n int, nonBlocking bool, deadline time.Time) (int, error) {
	for want := max(n, 1); s.Buffered() < want; {
		err := s.fill(nonBlocking, deadline)
		if err == ErrEOF || (err == ErrEmpty && nonBlocking) {
			if s.Buffered() == 0 {
				return 0, err
			}
			break
		}
		if err != nil {
			return 0, err
		}
		if nonBlocking {
			break // what is there now
		}
	}
	return min(n, s.Buffered()), nil
}

// readDirect serves a large read by reading from the kernel straight into
// out, after what the buffer holds.
func (s *Stream) readDirect(out []byte, deadline time.Time) (int, error) {
	n := len(out)
	k := copy(out, s.buf[s.r:s.w])
	s.r, s.w = 0, 0
	for k < n {
		m, err := s.sysRead(out[k:], false, deadline)
		k += m
		if err == ErrEOF {
			if k == 0 {
				return 0, ErrEOF
			}
			break
		}
		if err != nil {
			s.unread(out[:k])
			return 0, err
		}
	}
	s.ws.Done()
	return k, nil
}

// ReadSome reads at least one byte into p (fewer than len(p) when fewer are
// there), as io.Reader does, with ErrEOF at the end.
func (s *Stream) ReadSome(p []byte, o WaitOpts) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.Buffered() > 0 {
		n := copy(p, s.buf[s.r:s.w])
		s.r += n
		return n, nil
	}
	if len(p) < streamBufSize/2 { // small reads go through the buffer
		if err := s.fill(o.NonBlocking, o.Deadline()); err != nil {
			return 0, err
		}
		n := copy(p, s.buf[s.r:s.w])
		s.r += n
		return n, nil
	}
	return s.sysRead(p, o.NonBlocking, o.Deadline())
}

// FillDatagram reads the next datagram into the buffer when nothing is
// buffered (on a datagram socket one read(2) is one datagram), waiting as
// o says; then Read takes its bytes, Peek shows them.
func (s *Stream) FillDatagram(o WaitOpts) error {
	if s.Buffered() > 0 {
		return nil
	}
	s.r, s.w = 0, 0
	if len(s.buf) < streamBufSize {
		s.buf = make([]byte, streamBufSize)
	}
	return s.fill(o.NonBlocking, o.Deadline())
}

// Peek returns the buffered bytes, without taking them: valid until the
// next read, and not to be written.
func (s *Stream) Peek() []byte { return s.buf[s.r:s.w] }

// Discard drops the first n buffered bytes (at most all of them).
func (s *Stream) Discard(n int) { s.r += min(n, s.Buffered()) }

// ReadLine reads up to a newline and returns the line without it (Lua's
// "l"). A last line without a newline is returned as a line; then ErrEOF.
// On ErrTimeout / ErrEmpty the partial line stays buffered.
func (s *Stream) ReadLine(o WaitOpts) ([]byte, error) { return s.readLine(o, false) }

// ReadLineKeep is ReadLine that keeps the newline (Lua's "L").
func (s *Stream) ReadLineKeep(o WaitOpts) ([]byte, error) { return s.readLine(o, true) }

func (s *Stream) readLine(o WaitOpts, keep bool) ([]byte, error) {
	deadline := o.Deadline()
	scanned := 0
	nl := 0
	if keep {
		nl = 1
	}
	for {
		if i := bytes.IndexByte(s.buf[s.r+scanned:s.w], '\n'); i >= 0 {
			end := s.r + scanned + i
			line := make([]byte, end+nl-s.r)
			copy(line, s.buf[s.r:end+nl])
			s.r = end + 1
			s.ws.Done()
			return line, nil
		}
		scanned = s.Buffered()
		if scanned >= MaxLineSize {
			return nil, s.errorf("read", "line longer than %d bytes", MaxLineSize)
		}
		err := s.fill(o.NonBlocking, deadline)
		if err == ErrEOF && s.Buffered() > 0 {
			line := make([]byte, s.Buffered())
			copy(line, s.buf[s.r:s.w])
			s.r, s.w = 0, 0
			s.ws.Done()
			return line, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// ReadAll reads until the stream ends and returns everything (Lua's "a"):
// an empty slice, not an error, when the stream has already ended. On
// ErrTimeout what came stays buffered.
func (s *Stream) ReadAll(o WaitOpts) ([]byte, error) {
	deadline := o.Deadline()
	for {
		err := s.fill(o.NonBlocking, deadline)
		if err == ErrEOF {
			out := s.buf[s.r:s.w:s.w] // hand the buffer over: no copy
			s.buf, s.r, s.w = nil, 0, 0
			s.ws.Done()
			if out == nil {
				out = []byte{}
			}
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// WaitReadable returns once a read would not wait: bytes are buffered, or
// the kernel says the descriptor is readable (data, the end, an error).
// Without NonBlocking or a Timeout it returns at once (the read waits);
// NonBlocking says ErrEmpty when nothing is there, a Timeout ErrTimeout.
// (For a read that must not stop half way: a framed message.)
func (s *Stream) WaitReadable(o WaitOpts) error {
	if s.Buffered() > 0 {
		return nil
	}
	return s.waitFor(unix.POLLIN, OpRead, ErrEmpty, o)
}

// WaitWritable returns once the kernel says a write would not wait (room,
// or an error the write will report): ErrFull with NonBlocking when there
// is no room, ErrTimeout when o's Timeout passes first.
func (s *Stream) WaitWritable(o WaitOpts) error {
	return s.waitFor(unix.POLLOUT, OpWrite, ErrFull, o)
}

// waitFor waits for events as o says: at once without NonBlocking or a
// Timeout, none (ErrEmpty, ErrFull) when NonBlocking finds nothing.
func (s *Stream) waitFor(events int16, op uint32, none error, o WaitOpts) error {
	if !o.NonBlocking && o.Timeout <= 0 {
		return nil
	}
	err := s.wait(events, op, o.NonBlocking, o.Deadline())
	if err == ErrTimeout && o.NonBlocking {
		return none
	}
	return err
}

// wait polls the descriptor for events until the deadline (zero: none;
// only a look with nonBlocking), recording the wait in the status slot.
// ErrTimeout when the time ran out.
func (s *Stream) wait(events int16, op uint32, nonBlocking bool, deadline time.Time) error {
	if s.closed.Load() {
		return s.closedError("wait")
	}
	if nonBlocking {
		n, err := s.poll(events, 0)
		if err == nil && n == 0 {
			return ErrTimeout
		}
		return err
	}
	var peer int32 = -1
	if op == OpRead && s.peer != nil {
		peer = s.peer()
	}
	s.ws.Enter(op, s.id, peer, !deadline.IsZero())
	s.pfd[0] = unix.PollFd{Fd: int32(s.fd), Events: events}
	_, err := PollUntil(s.pfd[:], deadline)
	s.ws.Leave()
	return err
}

// poll is one Poll of the descriptor for events (timeout as Poll's: 0 a
// look, -1 until ready); s.pfd[0].Revents says what came.
func (s *Stream) poll(events int16, timeout time.Duration) (int, error) {
	s.pfd[0] = unix.PollFd{Fd: int32(s.fd), Events: events}
	return Poll(s.pfd[:], timeout)
}

// fill reads once from the kernel into the buffer, making room as needed.
func (s *Stream) fill(nonBlocking bool, deadline time.Time) error {
	if s.r == s.w {
		s.r, s.w = 0, 0
	}
	if s.w == len(s.buf) {
		if s.r > 0 && s.r >= len(s.buf)/2 { // slide the unread bytes down
			s.w = copy(s.buf, s.buf[s.r:s.w])
			s.r = 0
		} else {
			nb := make([]byte, max(streamBufSize, 2*len(s.buf)))
			s.w = copy(nb, s.buf[s.r:s.w])
			s.buf, s.r = nb, 0
		}
	}
	n, err := s.sysRead(s.buf[s.w:], nonBlocking, deadline)
	s.w += n
	return err
}

// unread puts p back in front of the (empty) buffer.
func (s *Stream) unread(p []byte) {
	if len(p) == 0 {
		return
	}
	if len(s.buf) < len(p) {
		s.buf = make([]byte, max(streamBufSize, len(p)))
	}
	s.r, s.w = 0, copy(s.buf, p)
}

// sysRead is one read from the kernel into p: a plain blocking read(2)
// when it may wait for ever, else reads that do not wait and Poll in
// between. ErrEOF at the end, ErrEmpty (nonBlocking) or ErrTimeout.
func (s *Stream) sysRead(p []byte, nonBlocking bool, deadline time.Time) (int, error) {
	if s.closed.Load() {
		return 0, s.closedError("read")
	}
	if !nonBlocking && deadline.IsZero() {
		held := s.holding()
		if s.more && (s.sock || !s.noNowait) {
			// The last read filled what it was given: more is likely
			// there, so try without waiting (and without Enter, whose
			// hook looks up the script line) before the blocking read.
			// Held too: on a socket the held wait is a ppoll and then
			// the read, two system calls where this is one; on a pipe
			// it is one io_uring_enter, but a read that does not wait
			// costs the kernel less as preadv2 than as an io_uring
			// request (512 MiB in 64 KiB chunks through a grown pipe,
			// one CPU, 7 runs in turns: 3444 -> 3603 MB/s median, C
			// 4013; ~6.9k of the reader's 8.2k io_uring_enters became
			// preadv2s, ~1.3k preadv2s say EAGAIN first). A unix
			// socket's bulk reader finds its next 64 KiB chunk queued
			// about half the time.
			s.more = false
			n, errno := s.readNow(p)
			switch {
			case errno == nil && n > 0:
				s.more = n == len(p)
				return n, nil
			case errno == nil:
				return 0, ErrEOF
			case errno != unix.EAGAIN && errno != unix.EOPNOTSUPP:
				return 0, s.errorf("read", "%v", errno)
			}
		}
		var peer int32 = -1
		if s.peer != nil {
			peer = s.peer()
		}
		s.ws.Enter(OpRead, s.id, peer, false)
		var n int
		var err error
		how := rwNo
		if held && s.uringable() {
			var errno unix.Errno
			if n, errno, how = s.heldRW(uringOpRead, p); how == rwDone {
				switch {
				case errno != 0:
					err = s.errorf("read", "%v", errno)
				case n == 0:
					err = ErrEOF
				}
			}
		}
		switch {
		case how == rwDone: // read (or failed) in the held wait
		case held && how == rwNo && s.waitHeld(unix.POLLIN):
			n, err = s.readBlocking(p) // readable: it does not wait
		default:
			n, err = s.waitLong(held, func() (int, error) { return s.readBlocking(p) })
		}
		s.ws.Leave()
		s.more = n == len(p)
		return n, err
	}
	for {
		n, errno := s.readNow(p)
		if errno != unix.EAGAIN {
			if errno != nil {
				return 0, s.errorf("read", "%v", errno)
			}
			if n == 0 {
				return 0, ErrEOF
			}
			return n, nil
		}
		if nonBlocking {
			return 0, ErrEmpty
		}
		if err := s.wait(unix.POLLIN, OpRead, false, deadline); err != nil {
			return 0, err
		}
	}
}

// Holding the P. With SetHoldP (a child: GOMAXPROCS=1), a blocking read
// or write does not sleep in read(2) or write(2), which sysmon would take
// the P from after 20 µs and hand to a thread that finds nothing to run
// (futex_linux.go, "Holding the P", says why that costs): it waits for the
// descriptor in a raw ppoll(2) that keeps the P, for at most holdMax, and
// then reads what is there, or writes what fits without waiting. A bulk
// transfer waits on nearly every 64 KiB chunk: GOMAXPROCS=2 in both
// processes (no retake while a P is idle) took 1 GiB through a pipe in
// 631 ms of CPU and 36.7k context switches against 1146 ms and 49.3k, and
// through a unix socket 574 ms / 16.4k against 1161 ms / 28.4k (perf
// stat, whole run; C: 490 ms / 33.1k and 387 ms / 15.0k). Waits that
// outlast holdMax holdLong times in a row go back to the ordinary call
// until one is short again (waitLong), as queue sleeps do. On a pipe the
// held wait and the read or write are one io_uring_enter (heldRW,
// uring_linux.go): 4 system calls a 64 KiB chunk (ppoll and read, ppoll
// and pwritev2) become 2, as C's.

// holding says whether a blocking wait holds the P now.
func (s *Stream) holding() bool {
	return holding(int(s.long))
}

// waitHeld waits, holding the P, until the descriptor reports events (or
// an error, or the end) or holdMax passes: true when it did, so a read now
// finds data or the end, and a write room (a descriptor shared with
// another reader or writer may still have to wait); false when the caller
// must wait as usual.
//
// The ppoll has no timeout (no timer armed and cancelled per wait, which
// C's blocking read does not pay either: in a C pipe ping of 64 KiB
// chunks, a 10 ms ppoll timeout before each read and write cost 440-459
// ms of CPU per GiB against 398-410 ms without): what ends a held wait
// that goes on is sysmon's preemption signal, sent to a goroutine that has
// held its P for 10 ms (ppoll is never restarted after a signal: EINTR);
// the wait gives up once holdMax has passed, as a timeout would. Without
// asynchronous preemption (GODEBUG=asyncpreemptoff=1) no signal comes, and
// the ppoll keeps its timeout.
func (s *Stream) waitHeld(events int16) bool {
	s.heldWaits++
	hook(hookStreamHeld)
	now := yieldBeforeHold()
	end := now + int64(holdMax)
	s.pfd[0] = unix.PollFd{Fd: int32(s.fd), Events: events}
	var ts unix.Timespec
	for {
		tsp := uintptr(0) // no timeout
		if !preemptSignals {
			ts = unix.NsecToTimespec(max(end-monoNow(), 0))
			tsp = uintptr(unsafe.Pointer(&ts))
		}
		n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&s.pfd[0])), 1, tsp, 0, 0, 0)
		switch {
		case e == 0 && n > 0:
			s.long = 0
			// Ready within a few µs: it did not sleep (a wake-up takes longer).
			s.waited = monoNow()-now > int64(5*time.Microsecond)
			return true
		case e == 0: // holdMax passed
			s.long++
			return false
		case e == unix.EINTR: // most likely sysmon's preemption: let it happen
			if preemptSignals && monoNow() >= end {
				s.long++
				return false
			}
			runtime.Gosched()
		default: // the ordinary call reports it
			return false
		}
	}
}

// preemptSignals says whether sysmon preempts a goroutine that has run
// for 10 ms with a signal (not with GODEBUG=asyncpreemptoff=1): then a
// held ppoll needs no timeout (waitHeld).
var preemptSignals = !asyncPreemptOff(os.Getenv("GODEBUG"))

// asyncPreemptOff says whether a GODEBUG value turns asynchronous
// preemption off (the last asyncpreemptoff setting wins, as in the
// runtime).
func asyncPreemptOff(godebug string) bool {
	off := false
	for _, kv := range strings.Split(godebug, ",") {
		if v, ok := strings.CutPrefix(kv, "asyncpreemptoff="); ok {
			off = v != "0"
		}
	}
	return off
}

// uringable says whether held waits on the stream may go through io_uring
// (heldRW): a pipe that takes RWF_NOWAIT (not a socket, whose held waits
// are left as they are, nor a FIFO opened by path).
func (s *Stream) uringable() bool { return !s.sock && !s.noNowait }

// waitLong runs call, a read or write that may sleep in the kernel, after
// a wait that held the P (held) or instead of one; while waits do not
// hold the P because they were long, a short one turns holding back on.
func (s *Stream) waitLong(held bool, call func() (int, error)) (int, error) {
	if held || s.long < holdLong || !holdP.Load() {
		return call()
	}
	start := monoNow()
	n, err := call()
	if monoNow()-start < int64(holdMax) {
		s.long = 0
	}
	return n, err
}

// readBlocking is read(2), which sleeps until data comes; on a descriptor
// found non-blocking it waits in poll.
func (s *Stream) readBlocking(p []byte) (int, error) {
	for {
		n, errno := unix.Read(s.fd, p)
		switch errno {
		case nil:
			if n == 0 {
				return 0, ErrEOF
			}
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if _, err := s.poll(unix.POLLIN, -1); err != nil {
				return 0, s.errorf("read", "%v", err)
			}
			continue
		}
		return 0, s.errorf("read", "%v", errno)
	}
}

// readNow is one read that does not wait: EAGAIN when nothing is there.
func (s *Stream) readNow(p []byte) (int, error) {
	for {
		var n int
		var err error
		switch {
		case s.sock:
			n, _, err = unix.Recvfrom(s.fd, p, unix.MSG_DONTWAIT)
		case !s.noNowait:
			n, err = unix.Preadv2(s.fd, [][]byte{p}, -1, unix.RWF_NOWAIT)
			if err == unix.EOPNOTSUPP {
				s.noNowait = true
				continue
			}
		case s.owned: // its flags are ours to switch for one read
			n, err = s.nonblocking(func() (int, error) { return unix.Read(s.fd, p) })
		default: // poll, then a read that finds what poll saw
			k, perr := s.poll(unix.POLLIN, 0)
			if perr != nil {
				return 0, perr
			}
			if k == 0 {
				return 0, unix.EAGAIN
			}
			n, err = unix.Read(s.fd, p)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			n = 0
		}
		return n, err
	}
}

// Write writes all of b, waiting for room as needed, and returns how many
// bytes went. With NonBlocking it writes what fits now and returns ErrFull
// if that was not all; with a Timeout it writes as room appears and
// returns ErrTimeout with the count written when the time is up. A pipe or
// FIFO write of at most PipeBuf bytes goes whole or not at all. Writing to
// a pipe or socket whose reading end is closed returns an error that wraps
// ErrClosed ("broken pipe").
func (s *Stream) Write(b []byte, o WaitOpts) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if s.closed.Load() {
		return 0, s.closedError("write")
	}
	if o.NonBlocking || o.Timeout > 0 {
		return s.writeWithin(b, o)
	}
	if len(b) >= streamBufSize/2 && !s.grown {
		s.growPipe()
	}
	// A write under 32 KiB first tries not to wait: when it finds room (a
	// reply, a line) it is the only system call and no wait is recorded
	// (Enter looks up the script line for the deadlock report: ~4% of a
	// pipe round trip's CPU). A bulk writer's large writes, which mostly
	// wait for the reader, go straight to the blocking write (trying first
	// cost them a third more system calls), unless waits hold the P
	// (waitHeld): then every write writes what fits without waiting and
	// waits for room in a held poll; on a pipe, first when the last write
	// had to wait (a writer ahead of its reader: a poll and a write per
	// chunk, not a write that finds no room, a poll and a write). Not on
	// a socket: poll says a unix socket is writable only once its queue
	// is down to a quarter of SO_SNDBUF, where a send finds room as soon
	// as there is some; polling first there took one wait per chunk, not
	// per three (context switches 14k -> 28k for 1 GiB).
	n := 0
	nowait := s.sock || !s.noNowait
	held := nowait && s.holding()
	if nowait && (held || len(b) < streamBufSize/2) {
		wait := held && s.full && !s.sock
		s.full = false
		for {
			if wait && s.uringable() {
				// Wait for room and write in one system call.
				s.ws.Enter(OpWrite, s.id, -1, false)
				m, errno, how := s.heldRW(uringOpWrite, b[n:])
				s.ws.Leave()
				if how == rwLong {
					break
				}
				if how == rwDone {
					s.full = s.full || s.waited
					n += m
					if n == len(b) {
						s.ws.Done()
						return n, nil
					}
					if errno != 0 {
						return n, s.writeError(errno)
					}
					continue // part of it: wait for room for the rest
				}
			}
			if wait {
				s.ws.Enter(OpWrite, s.id, -1, false)
				ready := s.waitHeld(unix.POLLOUT)
				s.ws.Leave()
				if !ready {
					break
				}
				s.full = s.full || s.waited
			}
			m, err := s.writeNow(b[n:])
			n += max(m, 0)
			if n == len(b) {
				s.ws.Done()
				return n, nil
			}
			if err != nil && err != unix.EAGAIN && err != unix.EOPNOTSUPP {
				return n, s.writeError(err)
			}
			if !held || err == unix.EOPNOTSUPP {
				break
			}
			wait, s.full = true, true
		}
	}
	s.ws.Enter(OpWrite, s.id, -1, false)
	m, err := s.waitLong(held, func() (int, error) { return s.writeBlocking(b[n:]) })
	s.ws.Leave()
	n += m
	if err == nil {
		s.ws.Done()
	}
	return n, err
}

// pipeBulkSize is what a pipe grows to when a stream first writes a large
// chunk (at least 32 KiB) to it and may wait for room (growPipe).
const pipeBulkSize = 256 << 10

// growPipe makes the pipe hold pipeBulkSize bytes (F_SETPIPE_SZ), once per
// stream, unless it holds that many already; a pipe that refuses (a user
// over its pipe-user-pages-soft, a socket) stays as it is. A pipe of the
// default 64 KiB, written in 64 KiB chunks, holds one chunk: the writer
// waits for the reader to take all of it and the reader for the writer to
// write the next, so each chunk costs two wake-ups and nothing overlaps
// (1 GiB through a Lua pipe: ~33k context switches; on two CPUs the reader
// and writer take turns across them). With 256 KiB the writer writes the
// next chunks while the reader reads one: 512 MiB in 64 KiB chunks between
// two Lua processes, 16.8k context switches became 10-11k on one CPU and
// 5-9k became ~1k with the two pinned to different CPUs. The pipe's pages
// are allocated as bytes are written and freed as they are read, so the
// larger ring costs memory only while it is full; what it costs up front
// is the user's pipe page count (pipe-user-pages-soft, 16384 pages:
// 341 grown pipes), which is why only a pipe that carries large writes
// grows. Records of at most PIPE_BUF bytes stay atomic at any size.
func (s *Stream) growPipe() {
	s.grown = true
	if s.sock {
		return
	}
	if n, err := unix.FcntlInt(uintptr(s.fd), unix.F_GETPIPE_SZ, 0); err != nil || n >= pipeBulkSize {
		return
	}
	unix.FcntlInt(uintptr(s.fd), unix.F_SETPIPE_SZ, pipeBulkSize)
}

// writeNow is one write that does not wait, on a socket or a pipe that
// takes RWF_NOWAIT: EAGAIN when there is no room; EOPNOTSUPP (and
// noNowait set) for a pipe that refuses it.
func (s *Stream) writeNow(b []byte) (int, error) {
	for {
		var m int
		var err error
		if s.sock {
			m, err = unix.SendmsgN(s.fd, b, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		} else {
			m, err = unix.Pwritev2(s.fd, [][]byte{b}, -1, unix.RWF_NOWAIT)
			if err == unix.EOPNOTSUPP {
				s.noNowait = true // a FIFO opened by path: see pipeRoom
			}
		}
		if err != unix.EINTR {
			return m, err
		}
	}
}

// writeBlocking is write(2) until everything went; on a descriptor found
// non-blocking it waits for room in poll.
func (s *Stream) writeBlocking(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, errno := unix.Write(s.fd, b[n:])
		if m > 0 {
			n += m
		}
		switch errno {
		case nil, unix.EINTR:
		case unix.EAGAIN:
			if _, err := s.poll(unix.POLLOUT, -1); err != nil {
				return n, s.errorf("write", "%v", err)
			}
		default:
			return n, s.writeError(errno)
		}
	}
	return n, nil
}

func (s *Stream) writeError(errno error) error {
	if errno == unix.EPIPE || errno == unix.ECONNRESET {
		return fmt.Errorf("%s: write: broken pipe: the reading end is closed: %w", s.what, ErrClosed)
	}
	return s.errorf("write", "%v", errno)
}

// writeWithin writes b without blocking (o.NonBlocking) or until o's
// deadline. Each write asks the kernel not to wait (MSG_DONTWAIT on a
// socket, RWF_NOWAIT on a pipe or FIFO), and Poll waits for room in
// between.
func (s *Stream) writeWithin(b []byte, o WaitOpts) (int, error) {
	deadline := o.Deadline()
	written := 0
	for written < len(b) {
		var m int
		var err error
		switch {
		case s.sock || !s.noNowait:
			if m, err = s.writeNow(b[written:]); err == unix.EOPNOTSUPP {
				continue
			}
		case s.owned:
			m, err = s.nonblocking(func() (int, error) { return unix.Write(s.fd, b[written:]) })
		default:
			m, err = s.pipeRoom(b[written:])
		}
		if m > 0 {
			written += m
			continue
		}
		switch err {
		case nil, unix.EINTR:
			continue
		case unix.EAGAIN:
		default:
			return written, s.writeError(err)
		}
		if o.NonBlocking {
			return written, ErrFull
		}
		if err := s.wait(unix.POLLOUT, OpWrite, false, deadline); err != nil {
			return written, err
		}
	}
	s.ws.Done()
	return written, nil
}

// nonblocking runs call with the descriptor in non-blocking mode, for a
// FIFO that refuses RWF_NOWAIT and whose open file is the Stream's alone
// (opened by path): a read then tells "no writer" (EOF) from "nothing
// written yet" (EAGAIN), which poll cannot.
func (s *Stream) nonblocking(call func() (int, error)) (int, error) {
	if err := unix.SetNonblock(s.fd, true); err != nil {
		return 0, err
	}
	n, err := call()
	if rerr := unix.SetNonblock(s.fd, false); rerr != nil && err == nil {
		err = rerr
	}
	return n, err
}

// pipeRoom writes at most PipeBuf bytes of b if poll(2) says the pipe has
// room, else returns EAGAIN. A pipe that polls writable has a free buffer
// of at least PIPE_BUF bytes, so the write does not block, unless another
// writer fills it first (then it waits like a plain write): the fallback
// for pipes that refuse RWF_NOWAIT (a FIFO opened by path).
func (s *Stream) pipeRoom(b []byte) (int, error) {
	n, err := s.poll(unix.POLLOUT, 0)
	if err != nil {
		return 0, err
	}
	if n == 0 || s.pfd[0].Revents&unix.POLLOUT == 0 {
		if s.pfd[0].Revents&unix.POLLERR != 0 {
			return 0, unix.EPIPE
		}
		return 0, unix.EAGAIN
	}
	return unix.Write(s.fd, b[:min(len(b), PipeBuf)])
}

// WriteString is Write for a string, without copying it.
func (s *Stream) WriteString(str string, o WaitOpts) (int, error) {
	return s.Write(unsafe.Slice(unsafe.StringData(str), len(str)), o)
}

// IO returns an io.ReadWriter over the stream that waits as o says, with
// one deadline for everything read or written through it; io.EOF at the
// end. It lets io helpers (ReadFrame, WriteFrame) use a Stream.
func (s *Stream) IO(o WaitOpts) io.ReadWriter {
	if o.Timeout > 0 {
		return &streamIO{s: s, o: WaitOpts{Timeout: time.Until(o.Deadline())}, deadline: o.Deadline()}
	}
	return &streamIO{s: s, o: o}
}

type streamIO struct {
	s        *Stream
	o        WaitOpts
	deadline time.Time
}

func (x *streamIO) opts() WaitOpts {
	if x.deadline.IsZero() {
		return x.o
	}
	d := time.Until(x.deadline)
	if d <= 0 {
		d = time.Nanosecond
	}
	return WaitOpts{Timeout: d}
}

func (x *streamIO) Read(p []byte) (int, error) {
	n, err := x.s.ReadSome(p, x.opts())
	if err == ErrEOF {
		return n, io.EOF
	}
	return n, err
}

func (x *streamIO) Write(p []byte) (int, error) { return x.s.Write(p, x.opts()) }
