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
// succeeds with "owner-died".
//
// ipc.Mutex records its waits in the status table naming the holder's
// pid as the peer: a deadlock report then says who holds the lock ("a
// waits to lock on mutex "fork2" held by b").
type mutex struct {
	kobject
	m *ipc.Mutex // nil while checking
}

func openMutex(L *lua.LState, mod *lua.LTable, env *Env) {
	registerClass(L, mutexClass, map[string]lua.LGFunction{
		"lock":   mutexLock,
		"unlock": mutexUnlock,
		"with":   mutexWith,
	}, nil)
	mod.RawSetString("mutex", L.NewFunction(env.luaMutex))
}

// ipc.mutex(name) -> m
func (e *Env) luaMutex(L *lua.LState) int {
	name := L.CheckString(1)
	d := e.declareObject(L, "mutex", name, "")
	m := &mutex{kobject: kobject{decl: d, what: d.Describe()}}
	d.Object = m
	makeInMemfd(L, e, d, &m.m,
		func() (*ipc.Mutex, error) { return ipc.NewMutex(name) },
		func(f *os.File) (*ipc.Mutex, error) { return ipc.OpenMutex(f, name) })
	L.Push(newUserData(L, mutexClass, m))
	return 1
}

// Recover releases the mutex if process pid died holding it (the
// supervisor calls it for every child it reaps).
func (m *mutex) Recover(pid int) {
	if m.m != nil {
		m.m.Recover(pid)
	}
}

// Granted: process pid was woken and has not run yet (the deadlock watch
// asks; see Granter).
func (m *mutex) Granted(pid int) bool {
	return m.m != nil && m.m.Granted(pid)
}

// Release unmaps the parent's copy at the end of the run.
func (m *mutex) Release() {
	if m.m != nil {
		m.m.Close()
	}
}

func checkMutex(L *lua.LState) *mutex {
	m := checkClass[*mutex](L, 1, "mutex")
	if m.m == nil {
		m.notHere(L)
	}
	return m
}

// lock takes the mutex as o says, recording the lock when traced.
// ipc.Mutex records the wait, naming the holder as its peer, in one
// uninterrupted wait: a wait cut into slices would lose its place in the
// FIFO queue at every slice.
func (m *mutex) lock(L *lua.LState, o ipc.WaitOpts) (ownerDied bool, err error) {
	if rec := m.decl.Trace; rec != nil {
		t0 := trace.Now()
		ownerDied, err = m.m.Lock(o)
		label := ""
		if ownerDied {
			label = "owner-died"
		}
		traceAcquire(L, rec, m.decl, trace.OpLock, t0, err, label)
		return ownerDied, err
	}
	return m.m.Lock(o)
}

// unlock releases the mutex, recording the unlock when traced.
func (m *mutex) unlock(L *lua.LState) error {
	rec := m.decl.Trace
	if rec == nil {
		return m.m.Unlock()
	}
	t0 := trace.Now()
	traceRelease(rec, m.decl)
	err := m.m.Unlock()
	traceReleased(L, rec, m.decl, trace.OpUnlock, t0, err)
	return err
}

// m:lock([{timeout =, block =}]) -> true [, "owner-died"] | nil, "timeout" | nil, "empty"
// "owner-died": the previous holder died holding the lock, which is now
// this process's; what it guarded may be half-updated.
func mutexLock(L *lua.LState) int {
	m := checkMutex(L)
	died, err := m.lock(L, WaitOpts(L, 2))
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

// m:unlock()
// Unlocking a mutex this process does not hold is an error.
func mutexUnlock(L *lua.LState) int {
	m := checkMutex(L)
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
	m := checkMutex(L)
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
