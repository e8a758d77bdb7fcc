package ipc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Stream is a byte stream over a pipe end, an open FIFO or a connected
// socket. Reads are buffered (Read, ReadLine, ReadAll share one buffer);
// writes go straight to the kernel.
//
// Waiting. The descriptor is non-blocking and registered with Go's poller:
// a read or write that must wait parks the goroutine (no thread is held)
// and deadlines come from the poller. Every system call runs through the
// descriptor's syscall.RawConn, so a call with data ready costs one read(2)
// or write(2), and a wait is recorded in the status slot only when the
// kernel said EAGAIN.
//
// Copies. Read(n) reads from the kernel straight into the slice it returns
// once the buffer is drained; ReadAll hands its buffer over instead of
// copying it; Write and WriteString write the caller's bytes as they are. The
// slices returned are always the caller's own (never aliased by the
// Stream), so a binding may turn them into strings with unsafe.String.
//
// A Stream is for one reading goroutine and one writing goroutine at a time.
type Stream struct {
	kind, name string
	f          *os.File
	rc         syscall.RawConn
	fd         int
	buf        []byte // read buffer; unread bytes are buf[r:w]
	r, w       int
	rdl, wdl   time.Time // deadlines last set on f
	closed     atomic.Bool
	ws         *WaitStatus
	id         int32
}

const (
	streamBufSize = 64 << 10
	// MaxLineSize bounds a line ReadLine will buffer.
	MaxLineSize = 64 << 20
)

// NewStream wraps f, a pipe end, FIFO or connected socket. kind and name
// make the errors ("pipe", "jobs" -> `pipe "jobs": read: ...`). The Stream
// owns f from then on (it may replace it, see pollableFile).
func NewStream(kind, name string, f *os.File) (*Stream, error) {
	if f == nil {
		return nil, fmt.Errorf("%s %q: no descriptor", kind, name)
	}
	pf, err := pollableFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	return newStream(kind, name, pf)
}

// newStream wraps an *os.File already made by os.NewFile from a
// non-blocking descriptor.
func newStream(kind, name string, f *os.File) (*Stream, error) {
	s := &Stream{kind: kind, name: name, f: f, id: -1}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, s.errorf("open", "%v", err)
	}
	s.rc = rc
	rc.Control(func(fd uintptr) { s.fd = int(fd) })
	return s, nil
}

// pollableFile returns f, or a replacement for it, whose descriptor is
// non-blocking and registered with the poller. A descriptor inherited
// through ExtraFiles arrives in blocking mode and O_NONBLOCK belongs to the
// open file, shared with every process that inherited it, so for a pipe or
// FIFO this opens a new open file on the same pipe through /proc/self/fd:
// setting O_NONBLOCK there leaves the others (an exec'd program reading
// its stdin, say) as they were. Other descriptors (sockets) are switched
// to non-blocking mode in place, as the net package does.
func pollableFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var flags int
	var ferr error
	rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) })
	if ferr != nil {
		return nil, os.NewSyscallError("fcntl", ferr)
	}
	if flags&unix.O_NONBLOCK != 0 && f.SetReadDeadline(time.Time{}) == nil {
		return f, nil // already pollable
	}
	nfd := -1
	rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
			nfd, ferr = unix.Open("/proc/self/fd/"+strconv.Itoa(int(fd)), flags&unix.O_ACCMODE|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if ferr == nil {
				return
			}
		}
		if nfd, ferr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); ferr == nil {
			if ferr = unix.SetNonblock(nfd, true); ferr != nil {
				unix.Close(nfd)
			}
		}
	})
	if ferr != nil {
		return nil, os.NewSyscallError("reopen", ferr)
	}
	name := f.Name()
	f.Close()
	return os.NewFile(uintptr(nfd), name), nil
}

// NewPipe makes a pipe whose ends are close-on-exec and ready for Streams
// (non-blocking, pollable). Handing an end to a child through ExtraFiles
// keeps it non-blocking (these Files were not put in non-blocking mode by
// package os, so their Fd method leaves them alone); for an exec'd program
// that expects a blocking descriptor, hand it BlockingCopy of the end.
func NewPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// BlockingCopy returns a blocking descriptor for the same pipe or FIFO as f,
// on its own open file (through /proc/self/fd), for an exec'd program's
// stdin or stdout. For other descriptors it returns a duplicate switched to
// blocking mode (which switches f too: they share the open file).
func BlockingCopy(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var ferr error
	rc.Control(func(fd uintptr) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			ferr = err
			return
		}
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
			if nfd, ferr = unix.Open("/proc/self/fd/"+strconv.Itoa(int(fd)), flags&unix.O_ACCMODE|unix.O_CLOEXEC|unix.O_NONBLOCK, 0); ferr == nil {
				// O_NONBLOCK only so that opening a write end cannot block.
				ferr = unix.SetNonblock(nfd, false)
				return
			}
		}
		if nfd, ferr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); ferr == nil {
			ferr = unix.SetNonblock(nfd, false)
		}
	})
	if ferr != nil {
		if nfd >= 0 {
			unix.Close(nfd)
		}
		return nil, os.NewSyscallError("reopen", ferr)
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}

func (s *Stream) errorf(op, format string, args ...any) error {
	return fmt.Errorf("%s %q: %s: %s", s.kind, s.name, op, fmt.Sprintf(format, args...))
}

// SetStatus makes the stream record its blocking waits in ws under the
// given object id (nil: don't record).
func (s *Stream) SetStatus(ws *WaitStatus, object int32) { s.ws, s.id = ws, object }

// File is the stream's descriptor (to hand to a child through ExtraFiles).
// Do not call its Fd method to poll it: use Stream.Fd.
func (s *Stream) File() *os.File { return s.f }

// Fd is the descriptor number, for poll(2) in select.
func (s *Stream) Fd() int { return s.fd }

// Buffered is the number of bytes read from the kernel and not yet
// returned: a select must treat a stream with Buffered() > 0 as readable
// whatever poll says.
func (s *Stream) Buffered() int { return s.w - s.r }

// Close closes the descriptor. A goroutine waiting in a read or write of
// this stream returns an error.
func (s *Stream) Close() error {
	s.closed.Store(true)
	if err := s.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return s.errorf("close", "%v", err)
	}
	return nil
}

// CloseWrite shuts down the sending side of a socket stream: the peer reads
// EOF while this side can still read.
func (s *Stream) CloseWrite() error {
	var err error
	if cerr := s.rc.Control(func(fd uintptr) { err = unix.Shutdown(int(fd), unix.SHUT_WR) }); cerr != nil {
		return s.closedError("close", cerr)
	}
	if err != nil {
		return s.errorf("close", "shutdown: %v", err)
	}
	return nil
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
	if n >= streamBufSize/2 && s.Buffered() < n && !o.NonBlocking {
		return s.readDirect(n, deadline)
	}
	for want := max(n, 1); s.Buffered() < want; {
		err := s.fill(o.NonBlocking, deadline)
		if err == ErrEOF || (err == ErrEmpty && o.NonBlocking) {
			if s.Buffered() == 0 {
				return nil, err
			}
			break
		}
		if err != nil {
			return nil, err
		}
		if o.NonBlocking {
			break // what is there now
		}
	}
	k := min(n, s.Buffered())
	out := make([]byte, k)
	s.r += copy(out, s.buf[s.r:s.r+k])
	s.ws.Done()
	return out, nil
}

// readDirect serves a large Read by reading from the kernel straight into
// the slice it returns.
func (s *Stream) readDirect(n int, deadline time.Time) ([]byte, error) {
	out := make([]byte, n)
	k := copy(out, s.buf[s.r:s.w])
	s.r, s.w = 0, 0
	for k < n {
		m, err := s.sysRead(out[k:], false, deadline)
		k += m
		if err == ErrEOF {
			if k == 0 {
				return nil, ErrEOF
			}
			break
		}
		if err != nil {
			s.unread(out[:k])
			return nil, err
		}
	}
	s.ws.Done()
	return out[:k], nil
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

// ReadLine reads up to a newline and returns the line without it (Lua's
// "l"). A last line without a newline is returned as a line; then ErrEOF.
// On ErrTimeout / ErrEmpty the partial line stays buffered.
func (s *Stream) ReadLine(o WaitOpts) ([]byte, error) {
	deadline := o.Deadline()
	scanned := 0
	for {
		if i := bytes.IndexByte(s.buf[s.r+scanned:s.w], '\n'); i >= 0 {
			end := s.r + scanned + i
			line := make([]byte, end-s.r)
			copy(line, s.buf[s.r:end])
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

// sysRead is one read(2) into p, waiting as o says.
func (s *Stream) sysRead(p []byte, nonBlocking bool, deadline time.Time) (int, error) {
	var n int
	var errno error
	read := func(fd uintptr) {
		for {
			n, errno = unix.Read(int(fd), p)
			if errno != unix.EINTR {
				break
			}
		}
		if errno != nil {
			n = 0
		}
	}
	if nonBlocking {
		if err := s.rc.Control(read); err != nil {
			return 0, s.closedError("read", err)
		}
		if errno == unix.EAGAIN {
			return 0, ErrEmpty
		}
	} else {
		if err := s.setDeadline(&s.rdl, deadline, s.f.SetReadDeadline); err != nil {
			return 0, err
		}
		entered := false
		err := s.rc.Read(func(fd uintptr) bool {
			read(fd)
			if errno == unix.EAGAIN {
				if !entered {
					entered = true
					s.ws.Enter(OpRead, s.id, -1, !deadline.IsZero())
				}
				return false
			}
			return true
		})
		if entered {
			s.ws.Leave()
		}
		if err != nil {
			return 0, s.closedError("read", err)
		}
	}
	switch {
	case errno != nil:
		return 0, s.errorf("read", "%v", errno)
	case n == 0:
		return 0, ErrEOF
	}
	return n, nil
}

// Write writes all of b, waiting for room as needed, and returns how many
// bytes went. With NonBlocking it writes what fits now and returns ErrFull
// if that was not all (a pipe takes a write of up to 4096 bytes whole or not
// at all). Writing to a pipe or socket whose reading end is closed returns
// an error that wraps ErrClosed ("broken pipe").
func (s *Stream) Write(b []byte, o WaitOpts) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n := 0
	var errno error
	write := func(fd uintptr) bool {
		for n < len(b) {
			m, err := unix.Write(int(fd), b[n:])
			switch err {
			case nil:
				n += m
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				errno = err
				return true
			}
		}
		return true
	}
	if o.NonBlocking {
		if err := s.rc.Control(func(fd uintptr) { write(fd) }); err != nil {
			return 0, s.closedError("write", err)
		}
		if errno == nil && n < len(b) {
			return n, ErrFull
		}
	} else {
		deadline := o.Deadline()
		if err := s.setDeadline(&s.wdl, deadline, s.f.SetWriteDeadline); err != nil {
			return 0, err
		}
		entered := false
		err := s.rc.Write(func(fd uintptr) bool {
			if write(fd) {
				return true
			}
			if !entered {
				entered = true
				s.ws.Enter(OpWrite, s.id, -1, !deadline.IsZero())
			}
			return false
		})
		if entered {
			s.ws.Leave()
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return n, ErrTimeout
			}
			return n, s.closedError("write", err)
		}
	}
	switch errno {
	case nil:
		s.ws.Done()
		return n, nil
	case unix.EPIPE, unix.ECONNRESET:
		return n, fmt.Errorf("%s %q: write: broken pipe: the reading end is closed: %w", s.kind, s.name, ErrClosed)
	}
	return n, s.errorf("write", "%v", errno)
}

// WriteString is Write for a string, without copying it.
func (s *Stream) WriteString(str string, o WaitOpts) (int, error) {
	return s.Write(unsafe.Slice(unsafe.StringData(str), len(str)), o)
}

// setDeadline sets a read or write deadline on f only when it changes, so
// calls without a timeout cost nothing.
func (s *Stream) setDeadline(cur *time.Time, d time.Time, set func(time.Time) error) error {
	if d.Equal(*cur) {
		return nil
	}
	if err := set(d); err != nil {
		if errors.Is(err, os.ErrNoDeadline) {
			return s.errorf("wait", "this descriptor does not support timeouts")
		}
		return s.closedError("wait", err)
	}
	*cur = d
	return nil
}

// closedError maps errors of the descriptor itself: a deadline becomes
// ErrTimeout, a closed descriptor says so.
func (s *Stream) closedError(op string, err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	case s.closed.Load() || errors.Is(err, os.ErrClosed):
		return s.errorf(op, "%s is closed", s.kind)
	}
	return s.errorf(op, "%v", err)
}

// IO returns an io.ReadWriter over the stream that waits as o says, with
// one deadline for everything read or written through it; io.EOF at the
// end. It lets io helpers (frames, bufio) use a Stream.
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
