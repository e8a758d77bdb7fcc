package bindings

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

// stream is the one Lua face of every byte stream: a pipe end, an open
// FIFO, a socket connection, one received in a message. Its methods (read,
// lines, write, close) are the same for all; the bytes go through an
// ipc.Stream (r for reading, w for writing: the same Stream on a socket,
// a pipe's two ends), which keeps the blocking fast path (a read that
// waits is a plain read(2)) and does the timeouts, block = false and
// the status slot.
type stream struct {
	what string // `pipe at x.lua:3`, `fifo "jobs"`: used in errors
	obj  int32  // declaration index, for the status table
	slot *ipc.WaitStatus
	r, w *ipc.Stream
	// beforeRead / beforeWrite run once before the first read / write (a
	// pipe uses them to close the end this process will not use).
	beforeRead, beforeWrite func()
	// tdecl is the declaration whose clock slot a traced read or write
	// uses (pipes and FIFOs); tconn, a connection's slots (trace.go).
	tdecl *Decl
	tconn *connTrace
}

// newStreamEnd makes the ipc.Stream of one end (f nil: this process does
// not hold it), naming it as s does and recording in s's status slot.
func (s *stream) newStreamEnd(kind string, f *os.File) (*ipc.Stream, error) {
	if f == nil {
		return nil, nil
	}
	st, err := ipc.NewStream(kind, s.what, f)
	if err != nil {
		return nil, err
	}
	s.adopt(st)
	return st, nil
}

// adopt names st as s and makes it record in s's status slot.
func (s *stream) adopt(st *ipc.Stream) {
	st.SetWhat(s.what)
	st.SetStatus(s.slot, s.obj)
}

func (s *stream) String() string { return s.what }

var streamMethods = []namedFunc{
	{"read", streamRead},
	{"write", streamWrite},
	{"lines", streamLines},
	{"close", streamClose},
}

// streamMethodMap is streamMethods as a class's methods (pipes, FIFOs).
func streamMethodMap() map[string]lua.LGFunction { return funcMap(streamMethods, 0) }

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

func (s *stream) reader(L *lua.LState) *ipc.Stream {
	if s.beforeRead != nil {
		f := s.beforeRead
		s.beforeRead = nil
		f()
	}
	if s.r == nil {
		L.RaiseError("%s: this process does not hold the read end", s.what)
	}
	return s.r
}

func (s *stream) writer(L *lua.LState) *ipc.Stream {
	if s.beforeWrite != nil {
		f := s.beforeWrite
		s.beforeWrite = nil
		f()
	}
	if s.w == nil {
		L.RaiseError("%s: this process does not hold the write end", s.what)
	}
	return s.w
}

// buffered is how many bytes were read ahead and not consumed.
func (s *stream) buffered() int {
	if s.r == nil {
		return 0
	}
	return s.r.Buffered()
}

// s:read([fmt], [opts]) -> string | nil, "eof" | nil, "timeout" | nil, "empty"
// fmt as in Lua's io: a byte count, "l" (line, default), "L" (line with its
// newline), "a" (everything up to EOF), "n" (a number). With a timeout or
// block = false, what came before the time was up stays for the next read.
// s:read(n, {into = b}) -> count read: the bytes go into the buffer b
// (buffer.go) instead of a new string.
func streamRead(L *lua.LState) int {
	s := toStream(L, 1)
	format := L.Get(2)
	var opts *lua.LTable
	if t, ok := format.(*lua.LTable); ok { // s:read{timeout=...}
		opts, format = t, lua.LNil
	} else {
		opts = optTable(L, 3)
	}
	var wopts ipc.WaitOpts
	if opts != nil {
		wopts = waitOptsFrom(L, opts)
	}
	st := s.reader(L)
	if into := intoBuffer(L, opts, s.what, "read"); into != nil {
		return s.readInto(L, st, format, wopts, into)
	}
	var t0 int64
	rec := s.recorder()
	if rec != nil {
		t0 = trace.Now()
	}
	v, err := readFormat(L, st, format, wopts)
	if rec != nil {
		traceStreamRead(L, rec, s, consumed(v, format), t0, err)
	}
	if err != nil {
		return readOutcome(L, err)
	}
	L.Push(v)
	return 1
}

// readInto is s:read(n, {into = b}): up to n bytes into b (fewer only at
// the end, or with block = false), and their count. A read that returns
// nil leaves b empty.
func (s *stream) readInto(L *lua.LState, st *ipc.Stream, format lua.LValue, o ipc.WaitOpts, b *buffer) int {
	f, ok := format.(lua.LNumber)
	if !ok {
		L.RaiseError("%s: read: into = %s takes a byte count, got %s", s.what, b.what, gotValue(format))
	}
	p := b.room(L, int(f), s.what, "read")
	var t0 int64
	rec := s.recorder()
	if rec != nil {
		t0 = trace.Now()
	}
	n, err := st.ReadInto(p, o)
	if rec != nil {
		traceStreamRead(L, rec, s, n, t0, err)
	}
	if err != nil {
		b.b = b.b[:0]
		return readOutcome(L, err)
	}
	L.Push(b.filled(n))
	return 1
}

// readOutcome pushes a read's outcome (eof, timeout, empty) or raises its
// error.
func readOutcome(L *lua.LState, err error) int {
	switch err {
	case ipc.ErrEOF, ipc.ErrTimeout, ipc.ErrEmpty:
		return Outcome(L, err)
	}
	L.RaiseError("%s", err.Error())
	return 0
}

func readFormat(L *lua.LState, st *ipc.Stream, format lua.LValue, o ipc.WaitOpts) (lua.LValue, error) {
	var b []byte
	var err error
	switch f := format.(type) {
	case *lua.LNilType:
		b, err = st.ReadLine(o)
	case lua.LNumber:
		n := int(f)
		if n < 0 {
			L.ArgError(2, "byte count must be >= 0")
		}
		b, err = st.Read(n, o)
	case lua.LString:
		switch strings.TrimPrefix(string(f), "*") {
		case "l":
			b, err = st.ReadLine(o)
		case "L":
			b, err = st.ReadLineKeep(o)
		case "a":
			b, err = st.ReadAll(o)
		case "n":
			if b, err = st.ReadLine(o); err != nil {
				return nil, err
			}
			n, perr := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
			if perr != nil {
				return lua.LNil, nil
			}
			return lua.LNumber(n), nil
		default:
			L.ArgError(2, "read format must be a byte count, \"l\", \"L\", \"a\" or \"n\"")
		}
	default:
		L.ArgError(2, "read format must be a byte count, \"l\", \"L\", \"a\" or \"n\"")
	}
	if err != nil {
		return nil, err
	}
	return lua.LString(ownedString(b)), nil // the Stream's slices are ours
}

// s:write(...[, {timeout =, block =}]) -> true | nil, "closed" | n?, "full" | n?, "timeout"
// Strings and numbers, as io.write, and buffers (their bytes). Without options a write waits until
// everything is written. With block = false it writes what fits now:
// true when that was everything, else nil, "full" when nothing went, or
// n, "full" when the first n bytes did. With a timeout it writes until
// everything went (true) or the time is up: nil, "timeout" or n, "timeout".
// A pipe or FIFO write of at most PIPE_BUF (4096) bytes is atomic: it goes
// whole or not at all, and writes by several processes never interleave
// inside it; a longer one may be split (ipc.Stream.Write).
func streamWrite(L *lua.LState) int {
	s := toStream(L, 1)
	st := s.writer(L)
	n := L.GetTop()
	var wopts ipc.WaitOpts
	if t, ok := L.Get(n).(*lua.LTable); ok && n >= 2 {
		wopts = waitOptsFrom(L, t)
		n--
	}
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
	written, err := st.Write(buf, wopts)
	outcome := err
	if errors.Is(err, ipc.ErrClosed) {
		outcome = ipc.ErrClosed
	}
	if rec != nil {
		traceStreamWrote(L, rec, s, off, len(buf), written, t0, outcome)
	}
	switch outcome {
	case nil, ipc.ErrClosed, ipc.ErrFull, ipc.ErrTimeout:
		return pushWritten(L, written, outcome)
	}
	L.RaiseError("%s", err.Error())
	return 0
}

// pushWritten pushes a write's result: true, or n, "full" / n,
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

// luaBytes returns the bytes of the string, number or buffer at n without
// copying a string or a buffer (the slice is only read, and only while the
// Lua value is alive and the buffer is not read into).
func luaBytes(L *lua.LState, n int) []byte {
	switch v := L.Get(n).(type) {
	case lua.LString:
		if len(v) == 0 {
			return nil
		}
		return unsafe.Slice(unsafe.StringData(string(v)), len(v))
	case lua.LNumber:
		return []byte(v.String())
	case *lua.LUserData:
		if b, ok := bufferBytes(v); ok {
			return b
		}
	}
	L.ArgError(n, "string, number or buffer expected, got "+typeName(L.Get(n)))
	return nil
}

// s:lines() -> iterator over lines until EOF
func streamLines(L *lua.LState) int {
	s := toStream(L, 1)
	st := s.reader(L)
	L.Push(L.NewFunction(func(L *lua.LState) int {
		rec := s.recorder()
		var t0 int64
		if rec != nil {
			t0 = trace.Now()
		}
		v, err := readFormat(L, st, lua.LNil, ipc.WaitOpts{})
		if rec != nil {
			traceStreamRead(L, rec, s, consumed(v, lua.LNil), t0, err)
		}
		if err == ipc.ErrEOF {
			L.Push(lua.LNil)
			return 1
		}
		if err != nil {
			return readOutcome(L, err)
		}
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
	}
	if s.w != nil && s.w != s.r {
		s.w.Close()
	}
	s.r, s.w = nil, nil
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
	return s.r.Fd()
}

func (s *stream) selectBuffered() bool { return s.buffered() > 0 }

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
