package runtime

import (
	"encoding/json"
	"fmt"
	"sort"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/trace"
)

// Report says what happened in a run.
type Report struct {
	OK        bool            `json:"ok"`
	Script    string          `json:"script"`
	Processes []ProcessReport `json:"processes"`
	Failed    []string        `json:"expectations_failed,omitempty"` // "proc: file:line: message"
	Deadlock  string          `json:"deadlock,omitempty"`            // the wait-for cycle, in the script's names
	// LeftWaiting: a process failed and the others were left waiting for
	// it (what they waited on); they were stopped. Exit 1, not a deadlock.
	LeftWaiting string `json:"left_waiting,omitempty"`
	// Where each process was when a timeout stopped the run.
	Where     []string `json:"where,omitempty"`
	TimedOut  bool     `json:"timed_out,omitempty"`
	Signal    string   `json:"interrupted_by,omitempty"` // "interrupt", "terminated", "hangup", "quit"
	Expect    string   `json:"expect,omitempty"`         // the outcome the script said it expects
	Error     string   `json:"error,omitempty"`          // a failure of the script itself (load error, error in main)
	Traceback string   `json:"traceback,omitempty"`      // the Lua traceback of Error (an error in main)
	// LoadError: the script did not load (a syntax error, too large) or
	// its top level raised an error before ipc.run() (exit 65).
	LoadError bool    `json:"load_error,omitempty"`
	NoInput   bool    `json:"no_input,omitempty"` // the script file could not be read (exit 66)
	Elapsed   float64 `json:"elapsed"`            // seconds
	// NotEnforced lists what --sandbox could not enforce on this kernel
	// (a run says so instead of pretending).
	NotEnforced []string       `json:"sandbox_not_enforced,omitempty"`
	Objects     []ObjectReport `json:"objects,omitempty"`

	// TracePath is where the trace was written (Options.Trace.Path); Trace
	// holds the recorded events when tracing was on.
	TracePath string `json:"trace,omitempty"`
	// Races are the shared-memory races Options.Race found, explained.
	Races []string     `json:"races,omitempty"`
	Trace *trace.Trace `json:"-"`
}

// ProcessReport is one process's outcome.
type ProcessReport struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Exit   int    `json:"exit"`             // exit status; -1 when killed by a signal or never started
	Signal string `json:"signal,omitempty"` // the signal that killed it
	Error  string `json:"error,omitempty"`  // the Lua error or start failure
	// Traceback is the Lua stack traceback of Error ("stack traceback:\n\t...").
	Traceback string `json:"traceback,omitempty"`
	// Stopped: the runtime stopped it (timeout, deadlock, signal,
	// fail-fast, or left waiting on a process that failed).
	Stopped bool    `json:"stopped,omitempty"`
	Pid     int     `json:"pid"`
	Elapsed float64 `json:"elapsed"` // seconds from start to exit
}

// ObjectReport lists a declaration (for `ipcscript check`).
type ObjectReport struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	Line string `json:"line"`
	Spec string `json:"spec,omitempty"`
}

// MarshalJSON writes "processes": [] rather than null when no process ran
// (a load error), so consumers can always iterate it.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report // without this method
	if r.Processes == nil {
		r.Processes = []ProcessReport{}
	}
	return json.Marshal(plain(r))
}

// Process returns the named process's report, or nil.
func (r *Report) Process(name string) *ProcessReport {
	for i := range r.Processes {
		if r.Processes[i].Name == name {
			return &r.Processes[i]
		}
	}
	return nil
}

// ExitCode maps the report to the documented exit codes. An outcome the
// script declared as expected (ipc.run{expect=...}) exits 0.
func (r *Report) ExitCode() int {
	switch {
	case r.NoInput:
		return ExitNoInput
	case r.LoadError:
		return ExitLoad
	case r.internal():
		return ExitInternal
	case r.Signal == "interrupt":
		return ExitInterrupted
	case r.Signal == "terminated":
		return ExitTerminated
	case r.Signal == "hangup":
		return ExitHangup
	case r.Signal == "quit":
		return ExitQuit
	case r.OK:
		return ExitOK
	case r.TimedOut:
		return ExitTimeout
	case r.Deadlock != "":
		return ExitDeadlock
	case len(r.Races) > 0:
		return ExitRace
	}
	return ExitFailed
}

// internal reports whether the run or one of its processes hit an internal
// error of ipcscript.
func (r *Report) internal() bool {
	if isInternal(r.Error) {
		return true
	}
	for _, p := range r.Processes {
		if isInternal(p.Error) {
			return true
		}
	}
	return false
}

// settle computes OK from the parts, honouring the expected outcome.
func (r *Report) settle() {
	allOK := r.Error == "" && len(r.Failed) == 0 && len(r.Races) == 0
	for _, p := range r.Processes {
		allOK = allOK && p.OK
	}
	switch r.Expect {
	case "":
		r.OK = allOK && r.Deadlock == "" && !r.TimedOut && r.Signal == ""
	case "deadlock":
		r.OK = r.Deadlock != "" && r.Error == "" && len(r.Failed) == 0 && r.Signal == ""
	case "timeout":
		r.OK = r.TimedOut && r.Error == "" && len(r.Failed) == 0 && r.Signal == ""
	case "failure":
		r.OK = !allOK && r.Signal == "" && !r.TimedOut && r.Error == ""
	}
}

// Summary is a one-line human description of a failed run.
func (r *Report) Summary() string {
	var failed, stopped []string
	for _, p := range r.Processes {
		switch {
		case p.Stopped:
			stopped = append(stopped, p.Name)
		case !p.OK:
			failed = append(failed, p.Name)
		}
	}
	sort.Strings(failed)
	sort.Strings(stopped)
	stoppedN := func() string {
		if len(stopped) == 1 {
			return "stopped 1 process"
		}
		return fmt.Sprintf("stopped %d processes", len(stopped))
	}
	switch {
	case r.LoadError || r.Error != "":
		return r.Error
	case r.Signal != "":
		word := map[string]string{"interrupt": "interrupted", "terminated": "terminated", "hangup": "hung up", "quit": "quit"}[r.Signal]
		if word == "" {
			word = "stopped by " + r.Signal
		}
		return word + "; " + stoppedN()
	case r.TimedOut:
		return "timed out; " + stoppedN()
	case r.Deadlock != "":
		return "deadlock: " + r.Deadlock
	case len(r.Races) > 0:
		return fmt.Sprintf("%d data races (--race)", len(r.Races))
	}
	if len(failed) > 0 {
		sum := fmt.Sprintf("%d of %d processes failed: %v", len(failed), len(r.Processes), failed)
		if len(failed) == 1 {
			if p := r.Process(failed[0]); p != nil && p.Error != "" {
				sum += " (" + p.Error + ")"
			}
		}
		if r.LeftWaiting != "" {
			sum += "; " + stoppedN() + " left waiting: " + r.LeftWaiting
		} else if len(stopped) > 0 {
			sum += fmt.Sprintf("; %s: %v", stoppedN(), stopped)
		}
		return sum
	}
	if len(r.Failed) > 0 {
		return fmt.Sprintf("%d expectations failed", len(r.Failed))
	}
	if r.Expect != "" && !r.OK {
		return fmt.Sprintf("the script expected %s, which did not happen", r.Expect)
	}
	return "ok"
}

// luaTable converts the report to the table ipc.run returns.
func (r *Report) luaTable(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("ok", lua.LBool(r.OK))
	t.RawSetString("elapsed", lua.LNumber(r.Elapsed))
	t.RawSetString("timed_out", lua.LBool(r.TimedOut))
	if r.Deadlock != "" {
		t.RawSetString("deadlock", lua.LString(r.Deadlock))
	}
	procs := L.NewTable()
	for _, p := range r.Processes {
		pt := L.NewTable()
		pt.RawSetString("ok", lua.LBool(p.OK))
		pt.RawSetString("exit", lua.LNumber(p.Exit))
		if p.Signal != "" {
			pt.RawSetString("signal", lua.LString(p.Signal))
		}
		if p.Error != "" {
			pt.RawSetString("error", lua.LString(p.Error))
		}
		pt.RawSetString("pid", lua.LNumber(p.Pid))
		pt.RawSetString("elapsed", lua.LNumber(p.Elapsed))
		procs.RawSetString(p.Name, pt)
	}
	t.RawSetString("processes", procs)
	failed := L.NewTable()
	for _, f := range r.Failed {
		failed.Append(lua.LString(f))
	}
	t.RawSetString("failed", failed)
	return t
}
