package bindings

import (
	"bufio"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

// stream is the Lua face of a byte stream: a pipe end, an open FIFO, a
// socket connection. Reads are buffered; writes go straight to the kernel.
// Descriptors are used in blocking mode (no Go poller): a blocked read is a
// plain read(2), which is the fastest path between processes; timeouts are
// done with poll(2) before the read.
type stream struct {
	what string // `pipe at x.lua:3`, `fifo "jobs"`: used in errors
	obj  int32  // declaration index, for the status table
	slot *ipc.WaitStatus
	r    *os.File
	br   *bufio.Reader
	w    *os.File
	// beforeRead / beforeWrite run once before the first read / write (a
	// pipe uses them to close the end this process will not use).
	beforeRead, beforeWrite func()
	// readPeer, when set, is the pid of the one process that can write to
	// this stream (a pipe's `from`), for the deadlock report.
	readPeer func() int32
	// tdecl is the declaration whose clock slot a traced read or write
	// uses (pipes and FIFOs); tconn, a connection's slots (trace.go).
	tdecl *Decl
	tconn *connTrace
}

func (s *stream) peer() int32 {
	if s.readPeer == nil {
		return 0
	}
	return s.readPeer()
}

const streamBuffer = 64 << 10

func (s *stream) String() string { return s.what }

var streamMethods = map[string]lua.LGFunction{
	"read":  streamRead,
	"write": streamWrite,
	"lines": streamLines,
	"close": streamClose,
}

// toStream finds the stream behind userdata of any stream-like class.
func toStream(L *lua.LState, n int) *stream {
	ud, ok := L.Get(n).(*lua.LUserData)
	if ok {
		if h, ok := ud.Value.(interface{ byteStream(L *lua.LState) *stream }); ok {
			return h.byteStream(L)
		}
	}
	L.ArgError(n, "stream expected, got "+typeName(L.Get(n)))
	return nil
}

func (s *stream) byteStream(*lua.LState) *stream { return s }

func (s *stream) reader(L *lua.LState) *bufio.Reader {
	if s.beforeRead != nil {
		f := s.beforeRead
		s.beforeRead = nil
		f()
	}
	if s.r == nil {
		L.RaiseError("%s: this process does not hold the read end", s.what)
	}
	if s.br == nil {
		s.br = bufio.NewReaderSize(s.r, streamBuffer)
	}
	return s.br
}

// waitReadable waits for data when the buffer is empty and a timeout or
// non-blocking read was asked for. It returns ipc.ErrTimeout / ErrEmpty.
func (s *stream) waitReadable(w ipc.WaitOpts) error {
	if s.br.Buffered() > 0 || (w.Timeout == 0 && !w.NonBlocking) {
		return nil
	}
	if err := ipc.PollFd(int(s.r.Fd()), unix.POLLIN, w); err != nil {
		if err == ipc.ErrTimeout && w.NonBlocking {
			return ipc.ErrEmpty
		}
		return err
	}
	return nil
}

// s:read([fmt], [opts]) -> string | nil, "eof" | nil, "timeout"
// fmt as in Lua's io: a byte count, "l" (line, default), "L" (line with its
// newline), "a" (everything up to EOF), "n" (a number).
func streamRead(L *lua.LState) int {
	s := toStream(L, 1)
	format := L.Get(2)
	var wopts ipc.WaitOpts
	if t, ok := format.(*lua.LTable); ok { // s:read{timeout=...}
		wopts, format = waitOptsFrom(L, t), lua.LNil
	} else {
		wopts = WaitOpts(L, 3)
	}
	br := s.reader(L)
	var t0 int64
	rec := s.recorder()
	if rec != nil {
		t0 = trace.Now()
	}
	if err := s.waitReadable(wopts); err != nil {
		if rec != nil {
			traceStreamRead(L, rec, s, 0, t0, err)
		}
		return Outcome(L, err)
	}
	s.slot.Enter(ipc.OpRead, s.obj, s.peer(), wopts.Timeout > 0)
	v, err := readFormat(L, br, format)
	s.slot.Leave()
	if rec != nil {
		traceStreamRead(L, rec, s, consumed(v, format), t0, eofOr(err))
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Outcome(L, ipc.ErrEOF)
		}
		L.RaiseError("%s: read: %v", s.what, err)
	}
	s.slot.Done()
	L.Push(v)
	return 1
}

func readFormat(L *lua.LState, br *bufio.Reader, format lua.LValue) (lua.LValue, error) {
	switch f := format.(type) {
	case *lua.LNilType:
		return readLine(br, false)
	case lua.LNumber:
		n := int(f)
		if n < 0 {
			L.ArgError(2, "byte count must be >= 0")
		}
		if n == 0 {
			if _, err := br.Peek(1); err != nil {
				return nil, err
			}
			return lua.LString(""), nil
		}
		buf := make([]byte, n)
		got, err := io.ReadFull(br, buf)
		if got > 0 {
			return lua.LString(ownedString(buf[:got])), nil
		}
		return nil, err
	case lua.LString:
		switch strings.TrimPrefix(string(f), "*") {
		case "l":
			return readLine(br, false)
		case "L":
			return readLine(br, true)
		case "a":
			b, err := io.ReadAll(br)
			if err != nil {
				return nil, err
			}
			return lua.LString(ownedString(b)), nil
		case "n":
			v, err := readLine(br, false)
			if err != nil {
				return nil, err
			}
			n, perr := strconv.ParseFloat(strings.TrimSpace(string(v.(lua.LString))), 64)
			if perr != nil {
				return lua.LNil, nil
			}
			return lua.LNumber(n), nil
		}
	}
	L.ArgError(2, "read format must be a byte count, \"l\", \"L\", \"a\" or \"n\"")
	return nil, nil
}

func readLine(br *bufio.Reader, keep bool) (lua.LValue, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull { // a line longer than the buffer
		var long []byte
		long = append(long, line...)
		for err == bufio.ErrBufferFull {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if len(line) == 0 && err != nil {
		return nil, err
	}
	if !keep && len(line) > 0 && line[len(line)-1] == '\n' {
		line = line[:len(line)-1]
	}
	return lua.LString(line), nil
}

// s:write(...[, {timeout =, block =}]) -> true | nil, "closed" | n?, "full" | n?, "timeout"
// Strings and numbers, as io.write. Without options a write waits until
// everything is written. With block = false it writes what fits now:
// true when that was everything, else nil, "full" when nothing went, or
// n, "full" when the first n bytes did. With a timeout it writes until
// everything went (true) or the time is up: nil, "timeout" or n, "timeout".
// A pipe or FIFO write of at most PIPE_BUF (4096) bytes is atomic: it goes
// whole or not at all, and writes by several processes never interleave
// inside it; a longer one may be split.
func streamWrite(L *lua.LState) int {
	s := toStream(L, 1)
	if s.beforeWrite != nil {
		f := s.beforeWrite
		s.beforeWrite = nil
		f()
	}
	if s.w == nil {
		L.RaiseError("%s: this process does not hold the write end", s.what)
	}
	n := L.GetTop()
	var wopts ipc.WaitOpts
	hasOpts := false
	if t, ok := L.Get(n).(*lua.LTable); ok && n >= 2 {
		wopts, hasOpts = waitOptsFrom(L, t), true
		n--
	}
	var err error
	var buf []byte
	if n == 2 {
		buf = luaBytes(L, 2)
	} else {
		for i := 2; i <= n; i++ {
			buf = append(buf, luaBytes(L, i)...)
		}
	}
	rec := s.recorder()
	var t0, off int64
	if rec != nil {
		t0 = trace.Now()
		off = traceStreamWrite(rec, s, len(buf))
	}
	if hasOpts && (wopts.NonBlocking || wopts.Timeout > 0) {
		written, outcome := s.writeWithin(L, buf, wopts)
		if rec != nil {
			traceStreamWrote(L, rec, s, off, len(buf), written, t0, outcome)
		}
		return pushWritten(L, written, outcome)
	}
	s.slot.Enter(ipc.OpWrite, s.obj, -1, false)
	err = writeAll(s.w, buf)
	s.slot.Leave()
	if rec != nil {
		wrote := len(buf)
		if err != nil {
			wrote = 0
		}
		traceStreamWrote(L, rec, s, off, len(buf), wrote, t0, closedOr(err))
	}
	if err != nil {
		if errors.Is(err, syscall.EPIPE) {
			return Outcome(L, ipc.ErrClosed)
		}
		L.RaiseError("%s: write: %v", s.what, err)
	}
	s.slot.Done()
	L.Push(lua.LTrue)
	return 1
}

func writeAll(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}

// writeWithin writes b without blocking (o.NonBlocking) or until o's
// deadline. The descriptor stays in blocking mode (its file description is
// shared with other processes, so O_NONBLOCK is not ours to set): each
// write asks the kernel not to wait (MSG_DONTWAIT on a socket, RWF_NOWAIT
// on a pipe or FIFO), and poll(2) waits for room in between.
func (s *stream) writeWithin(L *lua.LState, b []byte, o ipc.WaitOpts) (int, error) {
	fd := int(s.w.Fd())
	var st unix.Stat_t
	sock := unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK
	deadline := o.Deadline()
	written, entered, nowait := 0, false, true
	var outcome error
	for written < len(b) {
		var m int
		var err error
		switch {
		case sock:
			m, err = unix.SendmsgN(fd, b[written:], nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		case nowait:
			m, err = unix.Pwritev2(fd, [][]byte{b[written:]}, -1, unix.RWF_NOWAIT)
			if err == unix.EOPNOTSUPP {
				nowait = false // a FIFO opened by path: see pipeRoom
				continue
			}
		default:
			m, err = pipeRoom(fd, b[written:])
		}
		if m > 0 {
			written += m
			continue
		}
		switch err {
		case nil, unix.EINTR:
			continue
		case unix.EAGAIN:
		case unix.EPIPE, unix.ECONNRESET:
			outcome = ipc.ErrClosed
		default:
			if entered {
				s.slot.Leave()
			}
			L.RaiseError("%s: write: %v", s.what, err)
		}
		if outcome != nil {
			break
		}
		if o.NonBlocking {
			outcome = ipc.ErrFull
			break
		}
		left := time.Until(deadline)
		if left <= 0 {
			outcome = ipc.ErrTimeout
			break
		}
		if !entered {
			entered = true
			s.slot.Enter(ipc.OpWrite, s.obj, -1, true)
		}
		if err := ipc.PollFd(fd, unix.POLLOUT, ipc.WaitOpts{Timeout: left}); err != nil && err != ipc.ErrTimeout {
			s.slot.Leave()
			L.RaiseError("%s: write: %v", s.what, err)
		}
	}
	if entered {
		s.slot.Leave()
	}
	if outcome == nil {
		s.slot.Done()
	}
	return written, outcome
}

// pushWritten pushes writeWithin's result: true, or n, "full" / n,
// "timeout" when only n bytes went, or nil and the outcome.
func pushWritten(L *lua.LState, written int, outcome error) int {
	if outcome == nil {
		L.Push(lua.LTrue)
		return 1
	}
	if written > 0 && outcome != ipc.ErrClosed {
		L.Push(lua.LNumber(written))
		L.Push(lua.LString(outcome.Error()))
		return 2
	}
	return Outcome(L, outcome)
}

// pipeRoom writes at most PIPE_BUF bytes of b if poll(2) says the pipe
// has room, else returns EAGAIN. A pipe that polls writable has a free
// buffer of at least PIPE_BUF bytes, so the write does not block, unless
// another writer fills it first (then it waits like a plain write): the
// fallback for pipes that refuse RWF_NOWAIT (a FIFO opened by path).
func pipeRoom(fd int, b []byte) (int, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(fds, 0)
	if err != nil {
		return 0, err
	}
	if n == 0 || fds[0].Revents&unix.POLLOUT == 0 {
		if fds[0].Revents&unix.POLLERR != 0 {
			return 0, unix.EPIPE
		}
		return 0, unix.EAGAIN
	}
	return unix.Write(fd, b[:min(len(b), pipeBuf)])
}

const pipeBuf = 4096 // PIPE_BUF on Linux

// luaBytes returns the bytes of the string or number at n without copying a
// string (the slice is only read, and only while the Lua value is alive).
func luaBytes(L *lua.LState, n int) []byte {
	switch v := L.Get(n).(type) {
	case lua.LString:
		if len(v) == 0 {
			return nil
		}
		return unsafe.Slice(unsafe.StringData(string(v)), len(v))
	case lua.LNumber:
		return []byte(v.String())
	}
	L.ArgError(n, "string or number expected, got "+L.Get(n).Type().String())
	return nil
}

// s:lines() -> iterator over lines until EOF
func streamLines(L *lua.LState) int {
	s := toStream(L, 1)
	br := s.reader(L)
	L.Push(L.NewFunction(func(L *lua.LState) int {
		rec := s.recorder()
		var t0 int64
		if rec != nil {
			t0 = trace.Now()
		}
		s.slot.Enter(ipc.OpRead, s.obj, s.peer(), false)
		v, err := readLine(br, false)
		s.slot.Leave()
		if rec != nil {
			traceStreamRead(L, rec, s, consumed(v, lua.LNil), t0, eofOr(err))
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				L.Push(lua.LNil)
				return 1
			}
			L.RaiseError("%s: read: %v", s.what, err)
		}
		s.slot.Done()
		L.Push(v)
		return 1
	}))
	return 1
}

// s:close()
func streamClose(L *lua.LState) int {
	s := toStream(L, 1)
	s.close()
	return 0
}

func (s *stream) close() {
	s.beforeRead, s.beforeWrite = nil, nil
	if s.r != nil {
		s.r.Close()
		s.r = nil
	}
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
}

// A stream is selectable on its read end (select.go): ready when its
// buffer holds data or the kernel says POLLIN (or hang-up: the read then
// says "eof"). select returns the stream itself; the script reads it.

func (s *stream) selectFd() int {
	if s.beforeRead != nil { // a pipe closes its write end before reading
		f := s.beforeRead
		s.beforeRead = nil
		f()
	}
	if s.r == nil {
		return -1
	}
	return int(s.r.Fd())
}

func (s *stream) selectBuffered() bool { return s.br != nil && s.br.Buffered() > 0 }

func (s *stream) selectTake(*lua.LState) (lua.LValue, bool, error) { return nil, true, nil }

// ownedString makes a string of b without copying it. Only for a slice
// nothing else holds or will write: a 64 KiB read would otherwise be copied
// once more into the Lua string.
func ownedString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// recorder is the process's recorder when the run is traced and this
// stream has a clock slot.
func (s *stream) recorder() *trace.Recorder {
	switch {
	case s.tdecl != nil:
		return s.tdecl.Trace
	case s.tconn != nil:
		return s.tconn.rec
	}
	return nil
}

// consumed is how many bytes of the stream a read of format took: what it
// returned, plus the newline a line read strips.
func consumed(v lua.LValue, format lua.LValue) int {
	str, ok := v.(lua.LString)
	if !ok {
		return 0
	}
	n := len(str)
	switch f := format.(type) {
	case *lua.LNilType:
		n++
	case lua.LString:
		if f == "l" || f == "*l" || f == "n" || f == "*n" {
			n++
		}
	}
	return n
}

func eofOr(err error) error {
	if errors.Is(err, io.EOF) {
		return ipc.ErrEOF
	}
	return err
}

func closedOr(err error) error {
	if errors.Is(err, syscall.EPIPE) {
		return ipc.ErrClosed
	}
	return err
}
