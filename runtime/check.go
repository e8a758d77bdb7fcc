package runtime

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/check"
)

// Checking a run (docs/CHECKING.md): a run is recorded when the script
// asks for report.trace (ipc.run{trace = true}), when Options.Race asks
// for the race detector, or when Options.Trace says so; after it, the
// race detector reads the recording, and report.trace offers the checks.

// recordFor turns recording on for what this run needs.
func (sup *supervisor) recordFor(o bindings.RunOptions) {
	if o.Trace || sup.s.opts.Race {
		sup.s.opts.Trace.Record = true
	}
	t := &sup.s.opts.Trace
	// recorded for the race detector alone: the values of shared-memory
	// accesses are not read, so the merge leaves them out
	sup.raceOnly = sup.s.opts.Race && !o.Trace && t.Path == "" && t.W == nil
}

// checkRun runs the race detector when Options.Race is set and keeps the
// checks' view of the recording for report.trace.
func (sup *supervisor) checkRun(rep *Report) {
	if rep.Trace == nil {
		return
	}
	sup.checked = check.New(rep.Trace)
	if !sup.s.opts.Race {
		return
	}
	for _, r := range sup.checked.Races() {
		msg := sup.checked.Explain(r).Error()
		rep.Races = append(rep.Races, msg)
		sup.errorf("%s", msg)
	}
}

// luaTrace is report.trace: the recorded run with its checks, or nil.
func (sup *supervisor) luaTrace(L *lua.LState, rep *Report) lua.LValue {
	if sup.checked == nil {
		return lua.LNil
	}
	return bindings.TraceValue(L, sup.checked, rep.TracePath)
}
