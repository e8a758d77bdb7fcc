package bindings

import (
	"os"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
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
type cond struct {
	kobject
	c *ipc.Cond // nil while checking
}

func openCond(L *lua.LState, mod *lua.LTable, env *Env) {
	registerClass(L, condClass, map[string]lua.LGFunction{
		"wait":      condWait,
		"signal":    condSignal,
		"broadcast": condBroadcast,
	}, nil)
	mod.RawSetString("cond", L.NewFunction(env.luaCond))
}

// ipc.cond(name) -> c
func (e *Env) luaCond(L *lua.LState) int {
	name := L.CheckString(1)
	d := e.declareObject(L, "cond", name, "")
	c := &cond{kobject: kobject{decl: d, what: d.Describe()}}
	d.Object = c
	makeInMemfd(L, e, d, &c.c,
		func() (*ipc.Cond, error) { return ipc.NewCond(name) },
		func(f *os.File) (*ipc.Cond, error) { return ipc.OpenCond(f, name) })
	L.Push(newUserData(L, condClass, c))
	return 1
}

// Recover forgets the waiters of process pid, which died; a signal given
// to one of them goes to the next waiter.
func (c *cond) Recover(pid int) {
	if c.c != nil {
		c.c.Recover(pid)
	}
}

// Granted: process pid was woken and has not run yet (the deadlock watch
// asks; see Granter).
func (c *cond) Granted(pid int) bool {
	return c.c != nil && c.c.Granted(pid)
}

// Release unmaps the parent's copy at the end of the run.
func (c *cond) Release() {
	if c.c != nil {
		c.c.Close()
	}
}

func checkCond(L *lua.LState) *ipc.Cond {
	c := checkClass[*cond](L, 1, "cond")
	if c.c == nil {
		c.notHere(L)
	}
	return c.c
}

// c:wait(m, [{timeout =}]) -> true [, "owner-died"] | nil, "timeout"
// Unlocks m (which this process must hold), sleeps until signalled, and
// locks m again before returning, also after a timeout. "owner-died": m's
// previous holder died holding it.
func condWait(L *lua.LState) int {
	c := checkCond(L)
	m := checkClass[*mutex](L, 2, "mutex")
	if m.m == nil {
		m.notHere(L)
	}
	o := WaitOpts(L, 3)
	if o.NonBlocking {
		L.ArgError(3, "a condition wait cannot be non-blocking (block = false)")
	}
	died, err := c.Wait(m.m, o)
	if err != nil {
		return Outcome(L, err)
	}
	L.Push(lua.LTrue)
	if died {
		L.Push(lua.LString("owner-died"))
		return 2
	}
	return 1
}

// c:signal() wakes the waiter that has waited longest, if any.
func condSignal(L *lua.LState) int {
	if err := checkCond(L).Signal(); err != nil {
		L.RaiseError("%s", err.Error())
	}
	return 0
}

// c:broadcast() wakes every waiter.
func condBroadcast(L *lua.LState) int {
	if err := checkCond(L).Broadcast(); err != nil {
		L.RaiseError("%s", err.Error())
	}
	return 0
}
