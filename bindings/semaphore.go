package bindings

import (
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

const semaphoreClass = "ipc.semaphore"

// semaphore is a counting semaphore (ipc.Semaphore) in an anonymous memfd:
// the parent creates it and hands the memfd to every child, so it has no
// name outside the run and nothing to clean up but the parent's mapping.
// A post is a release and a wait an acquire (memobject.go).
type semaphore struct{ memObject[*ipc.Semaphore] }

func openSemaphore(L *lua.LState, mod *lua.LTable, env *Env) {
	env.registerClassOf(L, semaphoreClass, func() map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			"wait":    semaphoreWait,
			"trywait": semaphoreTryWait,
			"post":    semaphorePost,
			"value":   semaphoreValue,
		}
	}, nil)
	env.setFunc(L, mod, "semaphore", env.luaSemaphore)
}

// ipc.semaphore(name, initial) -> s
func (e *Env) luaSemaphore(L *lua.LState) int {
	name := L.CheckString(1)
	initial := checkInt(L, 2, "initial value")
	s := &semaphore{}
	declareMem(L, e, &s.memObject, s, "semaphore", name, fmt.Sprintf("initial=%d", initial),
		between("initial value", initial, 0, ipc.SemMax),
		func() (*ipc.Semaphore, error) { return ipc.NewSemaphore(name, initial) },
		func(f *os.File) (*ipc.Semaphore, error) { return ipc.OpenSemaphore(f, name) })
	L.Push(newUserData(L, semaphoreClass, s))
	return 1
}

func checkSem(L *lua.LState) (*semaphore, *ipc.Semaphore) {
	s := checkClass[*semaphore](L, 1, "semaphore")
	return s, s.here(L)
}

// s:wait([{timeout =, block =}]) -> true | nil, "timeout" | nil, "empty"
// Takes one unit, sleeping while the value is 0.
func semaphoreWait(L *lua.LState) int {
	s, x := checkSem(L)
	o := WaitOpts(L, 2)
	err := s.acquire(L, trace.OpWait, func() (string, error) { return "", x.Wait(o) })
	return pushAcquired(L, false, err)
}

// s:trywait() -> true | nil, "empty"
func semaphoreTryWait(L *lua.LState) int {
	s, x := checkSem(L)
	err := s.acquire(L, trace.OpWait, func() (string, error) { return "", x.TryWait() })
	return pushAcquired(L, false, err)
}

// s:post([n]) -> true
// Adds n units (default 1) and wakes up to n waiters.
func semaphorePost(L *lua.LState) int {
	s, x := checkSem(L)
	n := optIntArg(L, 2, "count", 1)
	if err := s.release(L, trace.OpPost, func() error { return x.Post(n) }); err != nil {
		L.RaiseError("%s", err.Error())
	}
	L.Push(lua.LTrue)
	return 1
}

// s:value() -> n
// A snapshot: another process may change it at once.
func semaphoreValue(L *lua.LState) int {
	_, x := checkSem(L)
	L.Push(lua.LNumber(x.Value()))
	return 1
}
