package bindings

import (
	"os"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

const condClass = "ipc.cond"

// cond is a condition variable (ipc.Cond) in an anonymous memfd, used
// with an ipc.mutex. Mesa semantics: a woken waiter takes the mutex again
// before c:wait returns, and by then the state may have changed, so the
// condition is re-checked in a loop:
//
//	m:lock()
//	while not ready() do c:wait(m) end
//	...
//	m:unlock()
//
// Traced, a signal or a broadcast is a release of the cond, and a wait is
// three events: the mutex's unlock (a release of the mutex), the wait
// (an acquire of the cond: it picks up the signal's clock) and the
// mutex's lock again (an acquire of the mutex).
type cond struct{ memObject[*ipc.Cond] }

func openCond(L *lua.LState, mod *lua.LTable, env *Env) {
	env.registerClassOf(L, condClass, func() map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			"wait":      condWait,
			"signal":    condSignal,
			"broadcast": condBroadcast,
		}
	}, nil)
	env.setFunc(L, mod, "cond", env.luaCond)
}

// ipc.cond(name) -> c
func (e *Env) luaCond(L *lua.LState) int {
	name := L.CheckString(1)
	c := &cond{}
	declareMem(L, e, &c.memObject, c, "cond", name, "", nil,
		func() (*ipc.Cond, error) { return ipc.NewCond(name) },
		func(f *os.File) (*ipc.Cond, error) { return ipc.OpenCond(f, name) })
	L.Push(newUserData(L, condClass, c))
	return 1
}

func checkCond(L *lua.LState) (*cond, *ipc.Cond) {
	c := checkClass[*cond](L, 1, "cond")
	return c, c.here(L)
}

// c:wait(m, [{timeout =}]) -> true [, "owner-died"] | nil, "timeout"
// Unlocks m (which this process must hold), sleeps until signalled, and
// locks m again before returning, also after a timeout. "owner-died": m's
// previous holder died holding it.
func condWait(L *lua.LState) int {
	c, x := checkCond(L)
	m := checkMutexAt(L, 2)
	o := WaitOpts(L, 3)
	if o.NonBlocking {
		L.ArgError(3, "a condition wait cannot be non-blocking (block = false)")
	}
	rec := c.decl.Trace
	if rec == nil {
		died, err := x.Wait(m.obj, o)
		return pushAcquired(L, died, err)
	}
	t0 := trace.Now()
	traceRelease(rec, m.decl) // the unlock inside the wait
	traceReleased(L, rec, m.decl, trace.OpUnlock, t0, nil)
	died, err := x.Wait(m.obj, o)
	traceAcquire(L, rec, c.decl, trace.OpWait, t0, err, "")
	if err == nil || err == ipc.ErrTimeout { // m is held again either way
		traceAcquire(L, rec, m.decl, trace.OpLock, trace.Now(), nil, labelled(died))
	}
	return pushAcquired(L, died, err)
}

// c:signal() wakes the waiter that has waited longest, if any.
func condSignal(L *lua.LState) int {
	c, x := checkCond(L)
	if err := c.release(L, trace.OpSignal, x.Signal); err != nil {
		L.RaiseError("%s", err.Error())
	}
	return 0
}

// c:broadcast() wakes every waiter.
func condBroadcast(L *lua.LState) int {
	c, x := checkCond(L)
	if err := c.release(L, trace.OpBroadcast, x.Broadcast); err != nil {
		L.RaiseError("%s", err.Error())
	}
	return 0
}
