package bindings

import (
	"os"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

const mutexClass = "ipc.mutex"

// mutex is a lock shared by the processes of a run (ipc.Mutex) in an
// anonymous memfd. Ownership is per process: the process that locked it
// unlocks it. When the holder dies holding it, the supervisor (which reaps
// every child) releases it at once through Recover, and the next lock
// succeeds with "owner-died". A lock is an acquire and an unlock a release
// (memobject.go).
//
// ipc.Mutex records its waits in the status table naming the holder's
// pid as the peer: a deadlock report then says who holds the lock ("a
// waits to lock on mutex "fork2" held by b").
type mutex struct{ memObject[*ipc.Mutex] }

func openMutex(L *lua.LState, mod *lua.LTable, env *Env) {
	env.registerClassOf(L, mutexClass, func() map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			"lock":   mutexLock,
			"unlock": mutexUnlock,
			"with":   mutexWith,
		}
	}, nil)
	env.setFunc(L, mod, "mutex", env.luaMutex)
}

// ipc.mutex(name) -> m
func (e *Env) luaMutex(L *lua.LState) int {
	name := L.CheckString(1)
	m := &mutex{}
	declareMem(L, e, &m.memObject, m, "mutex", name, "", nil,
		func() (*ipc.Mutex, error) { return ipc.NewMutex(name) },
		func(f *os.File) (*ipc.Mutex, error) { return ipc.OpenMutex(f, name) })
	L.Push(newUserData(L, mutexClass, m))
	return 1
}

func checkMutexAt(L *lua.LState, n int) *mutex {
	m := checkClass[*mutex](L, n, "mutex")
	m.here(L)
	return m
}

// lock takes the mutex as o says, recording the lock when traced.
// ipc.Mutex records the wait, naming the holder as its peer, in one
// uninterrupted wait: a wait cut into slices would lose its place in the
// FIFO queue at every slice.
func (m *mutex) lock(L *lua.LState, o ipc.WaitOpts) (ownerDied bool, err error) {
	err = m.acquire(L, trace.OpLock, func() (string, error) {
		var err error
		ownerDied, err = m.obj.Lock(o)
		return labelled(ownerDied), err
	})
	return ownerDied, err
}

// unlock releases the mutex, recording the unlock when traced.
func (m *mutex) unlock(L *lua.LState) error {
	return m.release(L, trace.OpUnlock, m.obj.Unlock)
}

// m:lock([{timeout =, block =}]) -> true [, "owner-died"] | nil, "timeout" | nil, "empty"
// "owner-died": the previous holder died holding the lock, which is now
// this process's; what it guarded may be half-updated.
func mutexLock(L *lua.LState) int {
	m := checkMutexAt(L, 1)
	died, err := m.lock(L, WaitOpts(L, 2))
	return pushAcquired(L, died, err)
}

// m:unlock()
// Unlocking a mutex this process does not hold is an error.
func mutexUnlock(L *lua.LState) int {
	m := checkMutexAt(L, 1)
	if err := m.unlock(L); err != nil {
		L.RaiseError("%s", err.Error())
	}
	return 0
}

// m:with(fn, ...) -> fn's results
// Locks, calls fn(...), unlocks, and returns what fn returned; an error in
// fn unlocks and is raised again. A lock taken over from a dead holder is
// not reported here: use m:lock when the guarded state may need repair.
func mutexWith(L *lua.LState) int {
	m := checkMutexAt(L, 1)
	fn := L.CheckFunction(2)
	nargs := L.GetTop() - 2
	if _, err := m.lock(L, ipc.WaitOpts{}); err != nil {
		L.RaiseError("%s", err.Error())
	}
	before := L.GetTop() // fn's arguments are at 3 .. before
	L.Push(fn)
	for i := 3; i < 3+nargs; i++ {
		L.Push(L.Get(i))
	}
	perr := L.PCall(nargs, lua.MultRet, nil)
	if err := m.unlock(L); err != nil && perr == nil {
		L.RaiseError("%s", err.Error())
	}
	if perr != nil {
		if ae, ok := perr.(*lua.ApiError); ok {
			L.Error(ae.Object, 0) // the error as fn raised it
		}
		L.RaiseError("%s", perr.Error())
	}
	return L.GetTop() - before
}
