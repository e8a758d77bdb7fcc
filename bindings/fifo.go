package bindings

import (
	"fmt"
	"strconv"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

const (
	fifoClass       = "ipc.fifo"
	fifoStreamClass = "ipc.fifo.stream"
)

// fifo is a named pipe (ipc.Fifo): a FIFO special file that processes open
// by path, with no common origin, and that external programs can open too.
//
// The parent creates it before any process runs: in the run's private
// directory (mode 0700), or at the path the script gives, exclusively
// (nothing may exist there, a symlink included) and mode 0600 whatever the
// umask (ipc.MakeFifo). Every process knows the path from the declaration; no descriptor
// is passed. The parent removes the FIFO when the run ends, on every exit
// path, at a path the script gave too: the run made it, the run removes
// it.
type fifo struct {
	kobject
	f    *ipc.Fifo // nil while checking
	path string    // "" while checking, unless the script gave it
	// created is set in the parent once the FIFO exists on disk.
	created bool
	slot    *ipc.WaitStatus
}

// fifoStream is one open end of a FIFO: a stream with read, write, lines
// and close (stream.go) over the ipc.Stream that Open returned, so the
// bytes Open may already have read are not lost.
type fifoStream struct {
	stream
}

func openFifo(L *lua.LState, mod *lua.LTable, env *Env) {
	env.registerClassOf(L, fifoClass, func() map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			"open": fifoOpen,
		}
	}, func(L *lua.LState, v any, key string) lua.LValue {
		if f := v.(*fifo); key == "path" && f.path != "" {
			return lua.LString(f.path)
		}
		return lua.LNil
	}, "path")
	env.registerClassOf(L, fifoStreamClass, streamMethodMap, nil)
	env.setFunc(L, mod, "fifo", env.luaFifo)
}

// ipc.fifo(name, [{path = "/some/where"}]) -> f
// f.path is where the FIFO is, the same in every process.
func (e *Env) luaFifo(L *lua.LState) int {
	name := L.CheckString(1)
	opts := optTable(L, 2)
	given := optString(L, opts, "path", "")
	spec := ""
	if given != "" {
		spec = "path=" + strconv.Quote(given)
	}
	d := e.declareObject(L, "fifo", name, spec)
	f := &fifo{kobject: kobject{decl: d, what: d.Describe()}, path: given, slot: e.Slot}
	d.Object = f
	// No descriptor travels: every process finds the FIFO by its path.
	locate := func() error {
		f.path = given
		if f.path == "" {
			var err error
			if f.path, err = e.runDirPath(name); err != nil {
				return fmt.Errorf("%s: %w", f.what, err)
			}
		}
		return nil
	}
	made := e.Make(L, d, MakerFuncs{
		CreateFn: func(*Decl) error {
			if err := locate(); err != nil {
				return err
			}
			if err := ipc.MakeFifo(f.path); err != nil {
				return fmt.Errorf("%s: create: %w", f.what, err)
			}
			f.created = true
			if given != "" {
				e.recordPath(L, f.what, f.path)
			}
			return nil
		},
		OpenFn: func(*Decl) error { return locate() },
	})
	if made {
		f.f = ipc.FifoAt(name, f.path)
		f.f.SetStatus(e.Slot, int32(d.Index))
	}
	L.Push(newUserData(L, fifoClass, f))
	return 1
}

// Release removes the FIFO at the end of the run (the parent made it).
func (f *fifo) Release() {
	if f.created {
		f.f.Remove()
		f.created = false
	}
}

// f:open("r" | "w", [{timeout =, block =}]) -> stream | nil, "timeout"
// Opening waits until the other end is opened too (as POSIX open does),
// but never forever when a timeout is given; block = false returns at once.
func fifoOpen(L *lua.LState) int {
	f := checkClass[*fifo](L, 1, "fifo")
	if f.f == nil {
		f.notHere(L)
	}
	mode := L.CheckString(2)
	if mode != "r" && mode != "w" {
		L.ArgError(2, fmt.Sprintf("mode must be \"r\" or \"w\", got %q", mode))
	}
	st, err := f.f.Open(mode, WaitOpts(L, 3))
	if err != nil {
		return Outcome(L, err)
	}
	s := &fifoStream{}
	s.what = fmt.Sprintf("%s (%s end)", f.what, roleName(mode))
	s.obj = int32(f.decl.Index)
	s.tdecl = f.decl
	s.slot = f.slot
	s.adopt(st) // reads go through st: Open may have read the first bytes already
	if mode == "r" {
		s.r = st
	} else {
		s.w = st
	}
	L.Push(newUserData(L, fifoStreamClass, s))
	return 1
}
