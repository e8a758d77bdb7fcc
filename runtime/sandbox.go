package runtime

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Sandbox configures --sandbox: what a script may do when it is someone
// else's (an exercise handed in, graded in CI or on a teacher's laptop).
// The zero value is no sandbox; DefaultSandbox has the classroom limits.
type Sandbox struct {
	Enabled bool
	// Limits of every process of the run (setrlimit in each child); 0
	// means the default below.
	CPUSeconds   int   // RLIMIT_CPU: CPU seconds per process
	AddressSpace int64 // RLIMIT_AS: bytes of address space per process
	OpenFiles    int   // RLIMIT_NOFILE: descriptors per process
	OutputBytes  int64 // bytes of stdout+stderr per process before it is stopped
}

// The default limits: a classroom machine running a suite of exercises.
const (
	DefaultCPUSeconds   = 60
	DefaultAddressSpace = 4 << 30 // Go reserves address space generously
	DefaultOpenFiles    = 256
	DefaultOutputBytes  = 16 << 20
)

func (s Sandbox) cpu() int {
	if s.CPUSeconds > 0 {
		return s.CPUSeconds
	}
	return DefaultCPUSeconds
}

func (s Sandbox) addressSpace() int64 {
	if s.AddressSpace > 0 {
		return s.AddressSpace
	}
	return DefaultAddressSpace
}

func (s Sandbox) openFiles() int {
	if s.OpenFiles > 0 {
		return s.OpenFiles
	}
	return DefaultOpenFiles
}

func (s Sandbox) outputBytes() int64 {
	if s.OutputBytes > 0 {
		return s.OutputBytes
	}
	return DefaultOutputBytes
}

// restrictLua removes from a Lua state what a sandboxed script may not
// use, each replaced by a function that raises an error naming it and
// --sandbox: running programs (os.execute, io.popen), changing files
// (os.remove, os.rename, os.tmpname), ending the process (os.exit),
// reading files other than through io.open in the run directory
// (dofile, loadfile, require of a file), loading bytecode, and debug.
// runDir returns the run directory ("" when there is none yet).
func restrictLua(L *lua.LState, runDir func() string) {
	refuse := func(name string) *lua.LFunction {
		return L.NewFunction(func(L *lua.LState) int {
			L.RaiseError("%s is not allowed under --sandbox", name)
			return 0
		})
	}
	set := func(table, name string) {
		full := name
		if table != "" {
			full = table + "." + name
			if t, ok := L.GetGlobal(table).(*lua.LTable); ok {
				t.RawSetString(name, refuse(full))
			}
			return
		}
		L.SetGlobal(name, refuse(full))
	}
	for _, n := range []string{"execute", "remove", "rename", "tmpname", "exit", "setlocale"} {
		set("os", n)
	}
	set("io", "popen")
	set("", "dofile")
	set("", "loadfile")
	// debug reaches into other functions' locals and metatables.
	L.SetGlobal("debug", lua.LNil)
	if loaded, ok := L.GetField(L.Get(lua.RegistryIndex), "_LOADED").(*lua.LTable); ok {
		loaded.RawSetString("debug", lua.LNil)
	}
	// load/loadstring: source only (gopher-lua cannot run bytecode, but the
	// refusal says so plainly).
	for _, name := range []string{"load", "loadstring"} {
		orig := L.GetGlobal(name)
		fn, ok := orig.(*lua.LFunction)
		if !ok {
			continue
		}
		name := name
		L.SetGlobal(name, L.NewFunction(func(L *lua.LState) int {
			if s, ok := L.Get(1).(lua.LString); ok && strings.HasPrefix(string(s), "\x1b") {
				L.RaiseError("%s of bytecode is not allowed under --sandbox", name)
			}
			top := L.GetTop()
			L.Push(fn)
			for i := 1; i <= top; i++ {
				L.Push(L.Get(i))
			}
			L.Call(top, lua.MultRet)
			return L.GetTop() - top
		}))
	}
	// require: modules the host preloaded (ipc, a Go host's own), never
	// a file.
	if req, ok := L.GetGlobal("require").(*lua.LFunction); ok {
		L.SetGlobal("require", L.NewFunction(func(L *lua.LState) int {
			name := L.CheckString(1)
			loaded, _ := L.GetField(L.Get(lua.RegistryIndex), "_LOADED").(*lua.LTable)
			pkg, _ := L.GetGlobal("package").(*lua.LTable)
			var preload *lua.LTable
			if pkg != nil {
				preload, _ = pkg.RawGetString("preload").(*lua.LTable)
			}
			if (loaded == nil || loaded.RawGetString(name) == lua.LNil) && (preload == nil || preload.RawGetString(name) == lua.LNil) {
				L.RaiseError("require %q: loading a file is not allowed under --sandbox (only the ipc module and the host's modules)", name)
			}
			L.Push(req)
			L.Push(lua.LString(name))
			L.Call(1, 1)
			return 1
		}))
	}
	// io.open, io.lines, io.input, io.output with a file name: only inside
	// the run directory.
	if iot, ok := L.GetGlobal("io").(*lua.LTable); ok {
		for _, name := range []string{"open", "lines", "input", "output"} {
			orig, ok := iot.RawGetString(name).(*lua.LFunction)
			if !ok {
				continue
			}
			name := name
			iot.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
				if p, ok := L.Get(1).(lua.LString); ok {
					if why := outsideRunDir(string(p), runDir()); why != "" {
						L.RaiseError("io.%s(%q): %s, which is not allowed under --sandbox", name, string(p), why)
					}
				}
				top := L.GetTop()
				L.Push(orig)
				for i := 1; i <= top; i++ {
					L.Push(L.Get(i))
				}
				L.Call(top, lua.MultRet)
				return L.GetTop() - top
			}))
		}
	}
}

// outsideRunDir says why path is not a file in the run directory ("" when
// it is one).
func outsideRunDir(path, runDir string) string {
	if runDir == "" {
		return "a file outside the run directory (this run has none)"
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err.Error()
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(dir, filepath.Base(abs))
	}
	if rel, err := filepath.Rel(runDir, abs); err != nil || rel == ".." || strings.HasPrefix(rel, "../") || rel == "." {
		return fmt.Sprintf("a file outside the run directory %s", runDir)
	}
	return ""
}

// outputLimit stops a process that writes more than max bytes of output
// (stdout and stderr together): a script printing in a loop must not
// fill the disk of whoever collects the output.
type outputLimit struct {
	max int64
	n   atomic.Int64
	pid atomic.Int32
	hit atomic.Bool
}

// limitedReader counts what r yields against o and ends the process (and
// the copy) once the limit is passed.
type limitedReader struct {
	r io.Reader
	o *outputLimit
}

func (l limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if l.o.n.Add(int64(n)) > l.o.max {
		if !l.o.hit.Swap(true) {
			if pid := l.o.pid.Load(); pid > 0 {
				syscall.Kill(-int(pid), syscall.SIGKILL)
			}
		}
		return 0, io.EOF
	}
	return n, err
}

// limitMessage names the sandbox limit a process broke, or "".
func (sup *supervisor) limitMessage(c *child) string {
	sb := sup.s.opts.Sandbox
	if !sb.Enabled {
		return ""
	}
	if c.out != nil && c.out.hit.Load() {
		return fmt.Sprintf("stopped: more than %d bytes of output, the sandbox's output limit (--max-output)", sb.outputBytes())
	}
	if c.state == nil {
		return ""
	}
	if ws, ok := c.state.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Signaled() && (ws.Signal() == syscall.SIGXCPU || ws.Signal() == syscall.SIGKILL) && c.state.SystemTime()+c.state.UserTime() >= time.Duration(sb.cpu())*time.Second:
			return fmt.Sprintf("killed: it used its %d CPU seconds, the sandbox's CPU limit (--cpu-limit)", sb.cpu())
		case ws.Exited() && ws.ExitStatus() == 2 && c.result.Error == "", ws.Signaled() && ws.Signal() == syscall.SIGABRT:
			return fmt.Sprintf("%s: out of memory within the sandbox's address-space limit of %d MiB (--mem-limit; a Go process needs about 2048)", describeExit(c), sb.addressSpace()>>20)
		}
	}
	return ""
}
