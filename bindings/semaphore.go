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
type semaphore struct {
	kobject
	s *ipc.Semaphore // nil while checking
}

func openSemaphore(L *lua.LState, mod *lua.LTable, env *Env) {
	registerClass(L, semaphoreClass, map[string]lua.LGFunction{
		"wait":    semaphoreWait,
		"trywait": semaphoreTryWait,
		"post":    semaphorePost,
		"value":   semaphoreValue,
	}, nil)
	mod.RawSetString("semaphore", L.NewFunction(env.luaSemaphore))
}

// ipc.semaphore(name, initial) -> s
func (e *Env) luaSemaphore(L *lua.LState) int {
	name := L.CheckString(1)
	initial := checkInt(L, 2, "initial value")
	d := e.declareObject(L, "semaphore", name, fmt.Sprintf("initial=%d", initial))
	s := &semaphore{kobject: kobject{decl: d, what: d.Describe()}}
	d.Object = s
	if initial < 0 || initial > ipc.SemMax { // in every mode: the same error everywhere
		L.RaiseError("%s: initial value %d must be between 0 and %d", s.what, initial, ipc.SemMax)
	}
	makeInMemfd(L, e, d, &s.s,
		func() (*ipc.Semaphore, error) { return ipc.NewSemaphore(name, initial) },
		func(f *os.File) (*ipc.Semaphore, error) { return ipc.OpenSemaphore(f, name) })
	L.Push(newUserData(L, semaphoreClass, s))
	return 1
}

// Recover forgets the sleepers of process pid, which died; a unit already
// handed to one of them goes to the next (the supervisor calls it for
// every child it reaps).
func (s *semaphore) Recover(pid int) {
	if s.s != nil {
		s.s.Recover(pid)
	}
}

// Granted: process pid was woken and has not run yet (the deadlock watch
// asks; see Granter).
func (s *semaphore) Granted(pid int) bool {
	return s.s != nil && s.s.Granted(pid)
}

// Release unmaps the parent's copy at the end of the run.
func (s *semaphore) Release() {
	if s.s != nil {
		s.s.Close()
	}
}

func checkSemaphore(L *lua.LState) *ipc.Semaphore { return checkSem(L).s }

func checkSem(L *lua.LState) *semaphore {
	s := checkClass[*semaphore](L, 1, "semaphore")
	if s.s == nil {
		s.notHere(L)
	}
	return s
}

// s:wait([{timeout =, block =}]) -> true | nil, "timeout" | nil, "empty"
// Takes one unit, sleeping while the value is 0.
func semaphoreWait(L *lua.LState) int {
	s := checkSem(L)
	var t0 int64
	if s.decl.Trace != nil {
		t0 = trace.Now()
	}
	err := s.s.Wait(WaitOpts(L, 2))
	if s.decl.Trace != nil {
		traceAcquire(L, s.decl.Trace, s.decl, trace.OpWait, t0, err, "")
	}
	if err != nil {
		return Outcome(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}

// s:trywait() -> true | nil, "empty"
func semaphoreTryWait(L *lua.LState) int {
	s := checkSem(L)
	var t0 int64
	if s.decl.Trace != nil {
		t0 = trace.Now()
	}
	err := s.s.TryWait()
	if s.decl.Trace != nil {
		traceAcquire(L, s.decl.Trace, s.decl, trace.OpWait, t0, err, "")
	}
	if err != nil {
		return Outcome(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}

// s:post([n]) -> true
// Adds n units (default 1) and wakes up to n waiters.
func semaphorePost(L *lua.LState) int {
	s := checkSem(L)
	n := optIntArg(L, 2, "count", 1)
	var t0 int64
	if s.decl.Trace != nil {
		t0 = trace.Now()
		traceRelease(s.decl.Trace, s.decl)
	}
	err := s.s.Post(n)
	if s.decl.Trace != nil {
		traceReleased(L, s.decl.Trace, s.decl, trace.OpPost, t0, err)
	}
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	L.Push(lua.LTrue)
	return 1
}

// s:value() -> n
// A snapshot: another process may change it at once.
func semaphoreValue(L *lua.LState) int {
	L.Push(lua.LNumber(checkSemaphore(L).Value()))
	return 1
}
