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
// goes on the board, in its phase's entry, before it can end the phase)
// and the wait (an acquire: a released party picks up every arrival of
// its phase, and of no other).
type barrier struct{ memObject[*ipc.Barrier] }

func openBarrier(L *lua.LState, mod *lua.LTable, env *Env) {
	env.registerClassOf(L, barrierClass, func() map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			"wait": barrierWait,
		}
	}, nil)
	env.setFunc(L, mod, "barrier", env.luaBarrier)
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
	var serial bool
	var err error
	if rec := b.decl.Trace; rec != nil {
		serial, err = b.tracedWait(L, rec, x, o)
	} else {
		serial, err = x.Wait(o)
	}
	if err != nil {
		return Outcome(L, err)
	}
	L.Push(lua.LTrue)
	L.Push(lua.LBool(serial))
	return 2
}

// tracedWait is a wait in a traced run: the arrival leaves the party's
// clock in its phase's entry on the board before it counts (so before it
// can end the phase), and the wait the phase ended merges that phase's
// arrivals, and only those. A wait that did not arrive (the barrier is
// broken, or "empty") is only the wait, with its outcome.
func (b *barrier) tracedWait(L *lua.LState, rec *trace.Recorder, x *ipc.Barrier, o ipc.WaitOpts) (bool, error) {
	board, where, t0 := rec.Board(), traceWhere(L), trace.Now()
	arrived := false
	serial, phase, err := x.WaitArrive(o, func(phase uint32) {
		rec.Tick()
		board.BarrierArrive(b.decl.Index, phase, rec)
		rec.Emit(&trace.Event{Op: trace.OpArrive, Kind: b.decl.Kind, Object: b.decl.Name, Where: where, Time: t0,
			Fields: map[string]any{"phase": float64(phase)}})
		arrived = true
	})
	e := trace.Event{Op: trace.OpWait, Kind: b.decl.Kind, Object: b.decl.Name, Where: where, Time: t0, End: trace.Now(), Outcome: outcomeOf(err),
		Fields: map[string]any{"phase": float64(phase)}}
	if arrived && err == nil {
		if c, ok := board.BarrierAcquire(b.decl.Index, phase, rec); ok {
			e.Cause = &c
		}
	}
	rec.Record(&e)
	return serial, err
}
