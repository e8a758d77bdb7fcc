package bindings

import (
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/trace"
)

// What the blocking kinds that live in one memfd (semaphore, mutex, cond,
// barrier) share, said once: how the Lua value is declared and made, what
// the supervisor calls on it (Recover, Granted, Release), the "not while
// checking" guard, and the tracing around an operation (an acquire, a
// release; docs/TRACING.md). A kind file embeds memObject[*ipc.X] and
// holds only its constructor's parameters and its Lua methods.

// syncObject is an ipc object in one memfd that processes block on.
type syncObject interface {
	memfdObject
	Granted(pid int) bool
	Close() error
}

// memObject is the Lua value of a syncObject: its declaration, its name
// in the script's words, and the object (the zero value while checking).
type memObject[T syncObject] struct {
	kobject
	obj T
}

// declareMem declares an object of kind called name (spec: what must be
// the same in every process), runs valid (nil: none) so a bad parameter
// raises the same error in every mode, then makes the object through the
// host. self is the kind's Lua value (it embeds o): the supervisor finds
// it as the declaration's Object.
func declareMem[T syncObject](L *lua.LState, e *Env, o *memObject[T], self any, kind, name, spec string,
	valid func(what string) string, create func() (T, error), open func(*os.File) (T, error)) {
	d := e.declareObject(L, kind, name, spec)
	o.kobject = kobject{decl: d, what: d.Describe()}
	d.Object = self
	if valid != nil {
		if msg := valid(o.what); msg != "" {
			L.RaiseError("%s", msg)
		}
	}
	makeInMemfd(L, e, d, &o.obj, create, open)
}

// between is a declareMem check: the parameter called label, v, must be
// between lo and hi.
func between(label string, v, lo, hi int) func(what string) string {
	return func(what string) string {
		if v < lo || v > hi {
			return fmt.Sprintf("%s: %s %d must be between %d and %d", what, label, v, lo, hi)
		}
		return ""
	}
}

// here returns the object, raising when there is none (while checking).
func (o *memObject[T]) here(L *lua.LState) T {
	var zero T
	if o.obj == zero {
		o.notHere(L)
	}
	return o.obj
}

// Recover repairs what process pid, which died, left in the object (a
// lock it held, its place among the sleepers, a barrier it was inside);
// the supervisor calls it for every child it reaps.
func (o *memObject[T]) Recover(pid int) {
	var zero T
	if o.obj == zero {
		return
	}
	switch x := any(o.obj).(type) {
	case interface{ Recover(int) bool }:
		x.Recover(pid)
	case interface{ Recover(int) }:
		x.Recover(pid)
	}
}

// Granted: process pid was woken and has not run yet (the deadlock watch
// asks; see Granter).
func (o *memObject[T]) Granted(pid int) bool {
	var zero T
	return o.obj != zero && o.obj.Granted(pid)
}

// Release unmaps the parent's copy at the end of the run.
func (o *memObject[T]) Release() {
	var zero T
	if o.obj != zero {
		o.obj.Close()
	}
}

// acquire runs fn, an operation that waits for what another process's
// release gives (a semaphore wait, a lock, a barrier's end of phase), and
// records it as op when the run is traced: on success it picks up the
// clock the releases left. fn returns a label for the event ("owner-died").
func (o *memObject[T]) acquire(L *lua.LState, op string, fn func() (string, error)) error {
	rec := o.decl.Trace
	if rec == nil {
		_, err := fn()
		return err
	}
	t0 := trace.Now()
	label, err := fn()
	traceAcquire(L, rec, o.decl, op, t0, err, label)
	return err
}

// release runs fn, an operation that gives what others wait for (a post,
// an unlock, a signal), and records it as op when traced: the clock is on
// the board before fn runs, so no process it wakes can miss it.
func (o *memObject[T]) release(L *lua.LState, op string, fn func() error) error {
	rec := o.decl.Trace
	if rec == nil {
		return fn()
	}
	t0 := trace.Now()
	traceRelease(rec, o.decl)
	err := fn()
	traceReleased(L, rec, o.decl, op, t0, err)
	return err
}

// labelled turns an "owner died" flag into an event label.
func labelled(ownerDied bool) string {
	if ownerDied {
		return "owner-died"
	}
	return ""
}

// pushAcquired pushes an acquire's result: true [, "owner-died"], or the
// outcome of err.
func pushAcquired(L *lua.LState, ownerDied bool, err error) int {
	if err != nil {
		return Outcome(L, err)
	}
	L.Push(lua.LTrue)
	if ownerDied {
		L.Push(lua.LString("owner-died"))
		return 2
	}
	return 1
}
