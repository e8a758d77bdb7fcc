package runtime

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"reflect"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/bindings"
)

// lineWriter serialises whole lines from many sources onto one writer, so
// the output of concurrent processes never interleaves mid-line.
type lineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	status *statusLine // the progress line to keep clear of, or nil
}

func (lw *lineWriter) writeLine(prefix string, line []byte) {
	buf := make([]byte, 0, len(prefix)+len(line)+1)
	buf = append(buf, prefix...)
	buf = append(buf, line...)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		buf = append(buf, '\n')
	}
	lw.Write(buf)
}

// Write makes a lineWriter usable as a plain writer for whole lines.
func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.status != nil {
		return lw.status.around(lw.w, p)
	}
	return lw.w.Write(p)
}

// copyLines copies r to lw line by line, each line prefixed, until EOF. A
// last line without a newline is still written (with one).
//
// Most processes print little or nothing, and a 64-process launch made a
// 64 KiB reader for each (the supervisor's GC was 17% of its CPU): the
// reader comes from a pool once the first bytes have arrived.
func copyLines(lw *lineWriter, prefix string, r io.Reader) {
	// The first read's buffer is a pooled one too: most children write
	// nothing to one of their two outputs, and a fresh 512 bytes per
	// output was two allocations per child.
	fb := firstReads.Get().(*[512]byte)
	defer firstReads.Put(fb)
	first := fb[:]
	n, err := r.Read(first)
	if n == 0 && err != nil {
		return
	}
	br := lineReaders.Get().(*bufio.Reader)
	br.Reset(io.MultiReader(bytes.NewReader(first[:n]), r))
	defer func() {
		br.Reset(nil)
		lineReaders.Put(br)
	}()
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			lw.writeLine(prefix, line)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

var lineReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// firstReads holds the buffers of copyLines's first reads.
var firstReads = sync.Pool{New: func() any { return new([512]byte) }}

// prefixWriter prefixes every line written to it (used for the parent's
// own ipc.log lines).
type prefixWriter struct {
	lw     *lineWriter
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.lw.writeLine(p.prefix, p.buf[:i+1])
		p.buf = p.buf[i+1:]
	}
}

// Flush writes a partial last line (without adding a newline).
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) == 0 {
		return
	}
	b := append([]byte(p.prefix), p.buf...)
	p.buf = p.buf[:0]
	p.lw.Write(b)
}

// sameWriter reports whether a and b are the same writer (comparing
// interface values whose dynamic type is not comparable would panic).
func sameWriter(a, b io.Writer) bool {
	if a == nil || b == nil {
		return false
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// The supervising process's Lua output.
//
// gopher-lua's print and io library write to the process's own os.Stdout.
// In the parent that bypasses Options.Stdout: under --json the report on
// stdout would get the script's lines mixed in, a test's capture would miss
// them, an embedder's buffer too. So the parent's print, io.write and
// io.stdout (and io.stderr) are replaced by versions that write through the
// runtime's writers. Lines are passed on whole (a partial line waits for its
// newline or a flush), so they never split a child's line.

const luaOutputClass = "ipcscript.output"

// luaOutput is io.stdout / io.stderr of the parent.
type luaOutput struct {
	name string // "stdout" / "stderr"
	w    *prefixWriter
}

func (o *luaOutput) String() string { return "file (" + o.name + ")" }

// redirectLuaOutput installs print, io.write, io.stdout, io.stderr,
// io.output, io.flush, io.close and io.type that know the runtime's writers.
func redirectLuaOutput(L *lua.LState, stdout, stderr *prefixWriter) {
	mt := L.NewTypeMetatable(luaOutputClass)
	check := func(L *lua.LState) *luaOutput {
		if ud, ok := L.Get(1).(*lua.LUserData); ok {
			if o, ok := ud.Value.(*luaOutput); ok {
				return o
			}
		}
		L.ArgError(1, "file expected")
		return nil
	}
	write := func(L *lua.LState, o *luaOutput, from int) {
		for i := from; i <= L.GetTop(); i++ {
			switch v := L.Get(i).(type) {
			case lua.LString:
				o.w.Write([]byte(v))
			case lua.LNumber:
				o.w.Write([]byte(v.String()))
			default:
				L.ArgError(i, "string expected, got "+v.Type().String())
			}
		}
	}
	notReadable := func(L *lua.LState) int {
		L.Push(lua.LNil)
		L.Push(lua.LString(check(L).name + " is not readable"))
		return 2
	}
	methods := map[string]lua.LGFunction{
		"write": func(L *lua.LState) int {
			o := check(L)
			write(L, o, 2)
			L.Push(L.Get(1))
			return 1
		},
		"flush": func(L *lua.LState) int {
			check(L).w.Flush()
			L.Push(lua.LTrue)
			return 1
		},
		"close": func(L *lua.LState) int {
			L.Push(lua.LNil)
			L.Push(lua.LString("cannot close standard file"))
			return 2
		},
		"setvbuf": func(L *lua.LState) int { L.Push(lua.LTrue); return 1 },
		"seek": func(L *lua.LState) int {
			L.Push(lua.LNil)
			L.Push(lua.LString("Illegal seek"))
			return 2
		},
		"read":  notReadable,
		"lines": notReadable,
	}
	L.SetField(mt, "__index", L.SetFuncs(L.NewTable(), methods))
	L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(check(L).String()))
		return 1
	}))
	newOutput := func(name string, w *prefixWriter) *lua.LUserData {
		ud := L.NewUserData()
		ud.Value = &luaOutput{name: name, w: w}
		L.SetMetatable(ud, mt)
		return ud
	}
	out, errOut := newOutput("stdout", stdout), newOutput("stderr", stderr)

	L.SetGlobal("print", L.NewFunction(func(L *lua.LState) int {
		n := L.GetTop()
		var b []byte
		for i := 1; i <= n; i++ {
			if i > 1 {
				b = append(b, '\t')
			}
			b = append(b, L.ToStringMeta(L.Get(i)).String()...)
		}
		stdout.Write(append(b, '\n'))
		return 0
	}))

	io, ok := L.GetGlobal("io").(*lua.LTable)
	if !ok {
		return
	}
	origOutput, origClose, origType := io.RawGetString("output"), io.RawGetString("close"), io.RawGetString("type")
	var current lua.LValue = out // the default output
	isOutput := func(v lua.LValue) bool {
		ud, ok := v.(*lua.LUserData)
		if ok {
			_, ok = ud.Value.(*luaOutput)
		}
		return ok
	}
	// callOrig calls one of the io library's own functions with our args.
	callOrig := func(L *lua.LState, fn lua.LValue) int {
		args := make([]lua.LValue, L.GetTop())
		for i := range args {
			args[i] = L.Get(i + 1)
		}
		L.Push(fn)
		for _, a := range args {
			L.Push(a)
		}
		L.Call(len(args), lua.MultRet)
		return L.GetTop() - len(args)
	}
	io.RawSetString("stdout", out)
	io.RawSetString("stderr", errOut)
	L.SetFuncs(io, map[string]lua.LGFunction{
		"write": func(L *lua.LState) int {
			if ud, ok := current.(*lua.LUserData); ok {
				if o, ok := ud.Value.(*luaOutput); ok {
					write(L, o, 1)
					L.Push(current)
					return 1
				}
			}
			// A file the script chose with io.output(f): f:write(...).
			args := make([]lua.LValue, L.GetTop())
			for i := range args {
				args[i] = L.Get(i + 1)
			}
			L.Push(L.GetField(current, "write"))
			L.Push(current)
			for _, a := range args {
				L.Push(a)
			}
			L.Call(len(args)+1, lua.MultRet)
			return L.GetTop() - len(args)
		},
		"output": func(L *lua.LState) int {
			if L.GetTop() == 0 || L.Get(1) == lua.LNil {
				L.Push(current)
				return 1
			}
			if isOutput(L.Get(1)) {
				current = L.Get(1)
				L.Push(current)
				return 1
			}
			n := callOrig(L, origOutput)
			current = L.Get(-n)
			return n
		},
		"flush": func(L *lua.LState) int {
			if ud, ok := current.(*lua.LUserData); ok {
				if o, ok := ud.Value.(*luaOutput); ok {
					o.w.Flush()
					L.Push(lua.LTrue)
					return 1
				}
			}
			L.Push(L.GetField(current, "flush"))
			L.Push(current)
			L.Call(1, lua.MultRet)
			return L.GetTop()
		},
		"close": func(L *lua.LState) int {
			if (L.GetTop() == 0 && isOutput(current)) || isOutput(L.Get(1)) {
				L.Push(lua.LNil)
				L.Push(lua.LString("cannot close standard file"))
				return 2
			}
			if L.GetTop() == 0 {
				L.Push(L.GetField(current, "close"))
				L.Push(current)
				L.Call(1, lua.MultRet)
				return L.GetTop()
			}
			return callOrig(L, origClose)
		},
		"type": func(L *lua.LState) int {
			if isOutput(L.Get(1)) {
				L.Push(lua.LString("file"))
				return 1
			}
			return callOrig(L, origType)
		},
	})
}

// output returns the child's stdout/stderr: the wired pipe end, or a pipe
// whose lines the parent copies with the process's prefix.
func (sup *supervisor) output(c *child, wired *bindings.Decl, lw *lineWriter, role string) (*os.File, error) {
	if wired != nil {
		return wired.File(role), nil
	}
	r, w, err := outputPipe()
	if err != nil {
		return nil, err
	}
	c.outs = append(c.outs, w)
	prefix := "[" + c.p.Name + "] "
	if sup.s.opts.NoPrefix {
		prefix = ""
	}
	var src io.Reader = r
	if sb := sup.s.opts.Sandbox; sb.Enabled {
		if c.out == nil {
			c.out = &outputLimit{max: sb.outputBytes()}
		}
		src = limitedReader{r, c.out}
	}
	sup.outputs.Add(1)
	go func() {
		defer sup.outputs.Done()
		defer r.Close()
		copyLines(lw, prefix, src)
	}()
	return w, nil
}

// outputPipe is a pipe for a child's stdout or stderr: the read end
// non-blocking, read through the netpoller; the write end, the child's,
// blocking and never in the netpoller. (os.Pipe made both ends
// non-blocking and registered both with epoll, and handing the write end
// to the child made it blocking again: four system calls per pipe more,
// and two more to close it.)
func outputPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	// The write end blocking again: one F_SETFL, where setting the read
	// end non-blocking took F_GETFL and F_SETFL.
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETFL, 0); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// waitOutputs waits for the children's output to drain. A grandchild that
// kept a pipe open could hold it forever, so the wait is bounded.
func (sup *supervisor) waitOutputs() {
	done := make(chan struct{})
	go func() { sup.outputs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		sup.warnf("output of a background process is still open; not waiting for it")
	}
}
