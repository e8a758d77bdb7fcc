package runtime

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/check"
	"github.com/ipcscript/ipcscript/trace"
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

// checkRun runs the race detector when Options.Race is set. The checks'
// view of the recording (check.New) is made here only for it; otherwise
// when report.trace is first used (luaTrace): a run traced only to be
// written never makes it (for a 400k-event run, ~45 MB and ~14k page
// faults of the supervisor's end).
func (sup *supervisor) checkRun(rep *Report) {
	if rep.Trace == nil || !sup.s.opts.Race {
		return
	}
	ct := sup.checkedTrace(rep.Trace)
	for _, r := range ct.Races() {
		msg := ct.Explain(r).Error()
		rep.Races = append(rep.Races, msg)
		sup.errorf("%s", msg)
	}
}

// checkedTrace is the checks' view of the recording tr, made once.
func (sup *supervisor) checkedTrace(tr *trace.Trace) *check.Trace {
	if sup.checked == nil || sup.checkedOf != tr {
		sup.checked, sup.checkedOf = check.New(tr), tr
	}
	return sup.checked
}

// luaTrace is report.trace: the recorded run with its checks, or nil.
func (sup *supervisor) luaTrace(L *lua.LState, rep *Report) lua.LValue {
	tr := rep.Trace
	if tr == nil {
		return lua.LNil
	}
	return bindings.LazyTraceValue(L, func() *check.Trace { return sup.checkedTrace(tr) }, rep.TracePath)
}
