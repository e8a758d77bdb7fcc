package bindings

import (
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

const barrierClass = "ipc.barrier"

// barrier is a reusable barrier for n parties (ipc.Barrier) in an
// anonymous memfd. One party per phase, the last to arrive, is told it is
// the serial one (as pthread_barrier_wait's PTHREAD_BARRIER_SERIAL_THREAD).
// A party killed inside the barrier breaks it: the others, and every later
// wait, get nil, "closed".
//
// Traced, a wait is two events: the arrival (a release: the party's clock
// goes on the board before it can end the phase) and the wait (an
// acquire: a released party picks up every arrival's clock).
type barrier struct{ memObject[*ipc.Barrier] }

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
	b := &barrier{}
	declareMem(L, e, &b.memObject, b, "barrier", name, fmt.Sprintf("n=%d", n),
		between("party count", n, 1, ipc.MaxBarrierParties),
		func() (*ipc.Barrier, error) { return ipc.NewBarrier(name, n) },
		func(f *os.File) (*ipc.Barrier, error) { return ipc.OpenBarrier(f, name) })
	L.Push(newUserData(L, barrierClass, b))
	return 1
}

// b:wait([{timeout =, block =}]) -> true, serial | nil, "closed" | nil, "timeout" | nil, "empty"
// serial is true for exactly one party per phase. "timeout" withdraws
// this arrival; "empty" (block = false) means the phase would not be
// complete with this arrival, and nothing is recorded.
func barrierWait(L *lua.LState) int {
	b := checkClass[*barrier](L, 1, "barrier")
	x := b.here(L)
	o := WaitOpts(L, 2)
	if rec := b.decl.Trace; rec != nil {
		t0 := trace.Now()
		traceRelease(rec, b.decl)
		traceReleased(L, rec, b.decl, trace.OpArrive, t0, nil)
	}
	var serial bool
	err := b.acquire(L, trace.OpWait, func() (string, error) {
		var err error
		serial, err = x.Wait(o)
		return "", err
	})
	if err != nil {
		return Outcome(L, err)
	}
	L.Push(lua.LTrue)
	L.Push(lua.LBool(serial))
	return 2
}
