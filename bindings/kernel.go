package bindings

import (
	"fmt"
	"math"

	lua "github.com/yuin/gopher-lua"
)

// What the kernel-object kinds (fifo.go, mqueue.go, semaphore.go,
// mutex.go, shm.go, socket.go) share: how they are declared and how their
// Lua values name themselves.

// kobject is the part every kernel object's Lua value shares: its
// declaration and its name in the script's words (`semaphore "slots"`),
// which starts every error message about it and is its __tostring.
type kobject struct {
	decl *Decl
	what string
}

func (k *kobject) String() string { return k.what }

// notHere raises the error for an object used where it does not exist:
// while a script is only checked, no object is created.
func (k *kobject) notHere(L *lua.LState) {
	L.RaiseError("%s: not available while checking a script (nothing is created)", k.what)
}

// declareObject declares an object of kind named name. A second object of
// the same kind and name is refused: its errors, and for FIFOs, sockets
// and queues its name in the file system, would be ambiguous.
func (e *Env) declareObject(L *lua.LState, kind, name, spec string) *Decl {
	if name == "" {
		L.ArgError(1, kind+" name must not be empty")
	}
	if !e.running {
		for _, d := range e.Decls {
			if d.Kind == kind && d.Name == name {
				L.RaiseError("%s %q is declared twice (first at %s)", kind, name, d.Line)
			}
		}
	}
	return e.Declare(L, kind, name, spec)
}

// runDirPath is where the object called name lives in the run directory
// (a FIFO, a unix socket). The names of the directory's own files
// (ipc/rundir_linux.go) are refused: a FIFO called "mqueues" would make the
// next queue's bookkeeping block opening it.
func (e *Env) runDirPath(name string) (string, error) {
	switch name {
	case "owner", "mqueues":
		return "", fmt.Errorf("%q is the name of one of the run directory's own files: choose another name", name)
	}
	rd, err := e.RunDir()
	if err != nil {
		return "", err
	}
	return rd.Path(name)
}

// checkInt returns the argument at n as an integer; a fraction raises.
func checkInt(L *lua.LState, n int, what string) int {
	v := float64(L.CheckNumber(n))
	if v != math.Trunc(v) || math.IsInf(v, 0) || v > math.MaxInt64 || v < math.MinInt64 {
		L.ArgError(n, fmt.Sprintf("%s must be an integer, got %v", what, v))
	}
	return int(v)
}

// optIntArg is checkInt with a default for an absent argument.
func optIntArg(L *lua.LState, n int, what string, def int) int {
	if L.Get(n) == lua.LNil {
		return def
	}
	return checkInt(L, n, what)
}
