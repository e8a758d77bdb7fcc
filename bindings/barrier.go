package bindings

import (
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

const barrierClass = "ipc.barrier"

// barrier is a reusable barrier for n parties (ipc.Barrier) in an
// anonymous memfd. One party per phase, the last to arrive, is told it is
// the serial one (as pthread_barrier_wait's PTHREAD_BARRIER_SERIAL_THREAD).
// A party killed inside the barrier breaks it: the others, and every later
// wait, get nil, "closed".
type barrier struct {
	kobject
	b *ipc.Barrier // nil while checking
}

func openBarrier(L *lua.LState, mod *lua.LTable, env *Env) {
	registerClass(L, barrierClass, map[string]lua.LGFunction{
		"wait": barrierWait,
	}, nil)
	mod.RawSetString("barrier", L.NewFunction(env.luaBarrier))
}

// ipc.barrier(name, n) -> b
func (e *Env) luaBarrier(L *lua.LState) int {
	name := L.CheckString(1)
	n := checkInt(L, 2, "party count")
	d := e.declareObject(L, "barrier", name, fmt.Sprintf("n=%d", n))
	b := &barrier{kobject: kobject{decl: d, what: d.Describe()}}
	d.Object = b
	if n < 1 || n > ipc.MaxBarrierParties {
		L.RaiseError("%s: party count %d must be between 1 and %d", b.what, n, ipc.MaxBarrierParties)
	}
	makeInMemfd(L, e, d, &b.b,
		func() (*ipc.Barrier, error) { return ipc.NewBarrier(name, n) },
		func(f *os.File) (*ipc.Barrier, error) { return ipc.OpenBarrier(f, name) })
	L.Push(newUserData(L, barrierClass, b))
	return 1
}

// Recover breaks the barrier if process pid died waiting in it.
func (b *barrier) Recover(pid int) {
	if b.b != nil {
		b.b.Recover(pid)
	}
}

// Granted: process pid was woken and has not run yet (the deadlock watch
// asks; see Granter).
func (b *barrier) Granted(pid int) bool {
	return b.b != nil && b.b.Granted(pid)
}

// Release unmaps the parent's copy at the end of the run.
func (b *barrier) Release() {
	if b.b != nil {
		b.b.Close()
	}
}

// b:wait([{timeout =, block =}]) -> true, serial | nil, "closed" | nil, "timeout" | nil, "empty"
// serial is true for exactly one party per phase. "timeout" withdraws
// this arrival; "empty" (block = false) means the phase would not be
// complete with this arrival, and nothing is recorded.
func barrierWait(L *lua.LState) int {
	b := checkClass[*barrier](L, 1, "barrier")
	if b.b == nil {
		b.notHere(L)
	}
	serial, err := b.b.Wait(WaitOpts(L, 2))
	if err != nil {
		return Outcome(L, err)
	}
	L.Push(lua.LTrue)
	L.Push(lua.LBool(serial))
	return 2
}
