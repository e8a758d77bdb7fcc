package bindings

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/internal/luatable"
	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

// ParentName is how the supervising process is named in logs and messages.
const ParentName = "main"

func openProcess(L *lua.LState, mod *lua.LTable, env *Env) {
	env.setFunc(L, mod, "process", env.luaProcess)
	env.setFunc(L, mod, "run", env.luaRun)
	env.setFunc(L, mod, "self", env.luaSelf)
	env.setFunc(L, mod, "sleep", env.luaSleep)
	env.setFunc(L, mod, "now", luaNow)
	env.setFunc(L, mod, "log", env.luaLog)
	env.setFunc(L, mod, "expect", env.luaExpect)
	env.setFunc(L, mod, "mark", env.luaMark)
	env.setFunc(L, mod, "span", env.luaSpan)
	env.setFunc(L, mod, "spawn", env.luaSpawn)
}

// ipc.process(name, [opts], fn)
func (e *Env) luaProcess(L *lua.LState) int {
	name := L.CheckString(1)
	var opts *lua.LTable
	var fn *lua.LFunction
	switch v := L.Get(2).(type) {
	case *lua.LFunction:
		fn = v
	case *lua.LTable:
		opts = v
		if f, ok := L.Get(3).(*lua.LFunction); ok {
			fn = f
		} else if L.Get(3) != lua.LNil {
			L.ArgError(3, "process body must be a function")
		}
	case *lua.LNilType:
	default:
		L.ArgError(2, "options table or body function expected")
	}
	if name == "" || strings.ContainsAny(name, ". \t\n") || name == ParentName {
		L.ArgError(1, fmt.Sprintf("process name %q: use a non-empty name without dots or spaces (and not %q, which names the supervisor)", name, ParentName))
	}
	for _, p := range e.Procs {
		if p.Group == name {
			L.RaiseError("process %q is declared twice (first at %s)", name, p.Decl.Line)
		}
	}
	if t := e.Templates[name]; t != nil {
		L.RaiseError("process %q is declared twice (first at %s)", name, t.Decl.Line)
	}
	if why := checkName(name); why != "" {
		L.ArgError(1, fmt.Sprintf("process name %q %s", name, why))
	}
	if opts != nil {
		if c, ok := opts.RawGetString("count").(lua.LNumber); ok && (c != c || float64(c) > float64(e.maxProcs())) {
			L.RaiseError("process %q: count %v is more than the %d processes a run may have (--max-procs)", name, c, e.maxProcs())
		}
	}
	count := optInt(L, opts, "count", 1)
	if count < 1 {
		L.RaiseError("process %q: count must be >= 1, got %d", name, count)
	}
	if len(e.Procs)+count > e.maxProcs() {
		L.RaiseError("process %q: %d more processes make %d, more than the %d a run may have (--max-procs)", name, count, len(e.Procs)+count, e.maxProcs())
	}
	var exec []string
	if opts != nil {
		switch v := opts.RawGetString("exec").(type) {
		case *lua.LTable:
			v.ForEach(func(_, s lua.LValue) {
				if _, ok := s.(lua.LString); !ok {
					if _, ok := s.(lua.LNumber); !ok {
						L.RaiseError("process %q: exec must be a list of strings", name)
					}
				}
				exec = append(exec, s.String())
			})
			if len(exec) == 0 {
				L.RaiseError("process %q: exec must name a program", name)
			}
		case lua.LString:
			exec = []string{string(v)}
		case *lua.LNilType:
		default:
			L.RaiseError("process %q: exec must be a list of strings, got %s", name, v.Type())
		}
	}
	if fn == nil && exec == nil {
		L.RaiseError("process %q needs a body function or opts.exec", name)
	}
	if fn != nil && exec != nil {
		L.RaiseError("process %q has both a body function and opts.exec; give one", name)
	}
	wire := func(field string) *Decl {
		if opts == nil {
			return nil
		}
		v := opts.RawGetString(field)
		if v == lua.LNil {
			return nil
		}
		s, ok := v.(*lua.LUserData)
		if ok {
			if w, ok := s.Value.(wirable); ok {
				return w.wireDecl()
			}
		}
		L.RaiseError("process %q: %s must be a pipe, got %s", name, field, typeName(v))
		return nil
	}
	stdin, stdout, stderr := wire("stdin"), wire("stdout"), wire("stderr")
	if optBool(L, opts, "spawn", false) {
		if opts.RawGetString("count") != lua.LNil || exec != nil || stdin != nil || stdout != nil || stderr != nil {
			L.RaiseError("process %q: a template (spawn = true) has no count, exec, stdin, stdout or stderr: ipc.spawn starts its instances, each running the body", name)
		}
		e.declareTemplate(L, name, fn, opts.RawGetString("args"))
		return 0
	}

	spec := "count=" + strconv.Itoa(count) // not fmt: nothing else formats at a child's start
	if exec != nil {
		spec += " exec=" + strings.Join(exec, " ")
	}
	for _, w := range []struct {
		n string
		d *Decl
	}{{"stdin", stdin}, {"stdout", stdout}, {"stderr", stderr}} {
		if w.d != nil {
			spec += fmt.Sprintf(" %s=#%d", w.n, w.d.Index+1)
		}
	}
	d := e.Declare(L, "process", name, spec)
	var args lua.LValue = lua.LNil
	if opts != nil {
		args = opts.RawGetString("args")
	}
	// A child's manifest lists the same instances in the same order (a
	// mismatch was refused by Declare): their names are taken from it, not
	// made again. (fmt.Sprintf per instance was ~60k of the ~115k
	// instructions 64 instances cost a child.)
	var known []ManifestProc
	if e.Manifest != nil && len(e.Manifest.Procs) >= len(e.Procs)+count {
		known = e.Manifest.Procs[len(e.Procs) : len(e.Procs)+count]
	}
	// The manifest's instances of a group share their group's name: each
	// is compared with the first's (the same bytes, found equal at once)
	// once that is found to be name.
	group := name
	if known != nil && known[0].Group == name {
		group = known[0].Group
	}
	// The group's instances are made in one allocation, not one each
	// (at 256 instances, one each was ~70k instructions of a child's start).
	insts := make([]Process, count)
	e.Procs = slices.Grow(e.Procs, count)
	findSelf := e.Self == nil && e.Host.Role() == RoleChild
	for i := 1; i <= count; i++ {
		inst := name
		if count > 1 {
			if k := known; k != nil && k[i-1].Index == i && k[i-1].Group == group {
				inst = k[i-1].Name
			} else {
				inst = name + "." + strconv.Itoa(i)
			}
		}
		// Field by field: insts is zeroed already, and a composite literal
		// was built aside and copied (~100 instructions an instance).
		p := &insts[i-1]
		p.Name, p.Group, p.Index, p.Count = inst, name, i, count
		p.Slot, p.Serial, p.Decl = len(e.Procs), len(e.Procs)+1, d
		p.Fn, p.Args, p.Exec = fn, args, exec
		p.Stdin, p.Stdout, p.Stderr = stdin, stdout, stderr
		e.Procs = append(e.Procs, p)
		if findSelf && inst == e.Manifest.Self {
			e.Self = p
			findSelf = false
		}
	}
	// A pipe wired to a process's stdin is read by that process alone, and
	// one wired to its stdout is written by it alone: say so, so the others
	// never hold that end and EOF arrives when it should.
	for _, w := range []struct {
		d    *Decl
		role string
	}{{stdin, "r"}, {stdout, "w"}, {stderr, "w"}} {
		if w.d == nil {
			continue
		}
		if pp, ok := w.d.Object.(*pipe); ok {
			pp.claim(L, w.role, name, d.Line)
		}
	}
	return 0
}

// wirable objects can be a process's stdin/stdout/stderr.
type wirable interface{ wireDecl() *Decl }

// ipc.run([opts]) -> report   (in a child: runs the body, never returns)
func (e *Env) luaRun(L *lua.LState) int {
	if e.running && e.Host.Role() != RoleChild {
		L.RaiseError("ipc.run() is called once, at the top level")
	}
	t := optTable(L, 1)
	var o RunOptions
	if t != nil {
		switch v := t.RawGetString("timeout").(type) {
		case lua.LNumber:
			if _, err := Seconds("ipc.run: timeout", float64(v)); err != nil {
				L.RaiseError("%s", err.Error())
			}
			o.Timeout = float64(v)
		case *lua.LNilType:
		default:
			L.RaiseError("ipc.run: timeout must be a number of seconds, got %s", gotValue(v))
		}
		switch v := t.RawGetString("main").(type) {
		case *lua.LFunction:
			o.Main = v
		case *lua.LNilType:
		default:
			L.RaiseError("ipc.run: main must be a function, got %s", gotValue(v))
		}
		o.FailFast = optBool(L, t, "fail_fast", false)
		o.Trace = optBool(L, t, "trace", false)
		o.Expect = optString(L, t, "expect", "")
		switch o.Expect {
		case "", "deadlock", "failure", "timeout":
		default:
			L.RaiseError("ipc.run: expect must be \"deadlock\", \"failure\" or \"timeout\", got %q", o.Expect)
		}
	}
	e.ranRun = true
	if err := e.Validate(); err != nil {
		L.RaiseError("%s", err.Error())
	}
	if e.Run == nil {
		L.Push(lua.LNil)
		return 1
	}
	if o.Main != nil && e.Host.Role() == RoleParent {
		if len(e.Procs)+1 > e.maxProcs() {
			L.RaiseError("ipc.run: main makes %d processes, more than the %d a run may have (--max-procs)", len(e.Procs)+1, e.maxProcs())
		}
		e.addMain()
	}
	rep := e.Run(L, o)
	e.running = true
	L.Push(rep)
	return 1
}

// Validate checks what can only be checked once every declaration is in:
// the process names that objects refer to exist.
func (e *Env) Validate() error {
	for _, d := range e.Decls {
		for _, f := range d.Files {
			if f.Only == "" {
				continue
			}
			found := e.Templates[f.Only] != nil
			for _, p := range e.Procs {
				if f.Owns(p) {
					found = true
					break
				}
			}
			if !found {
				return fmt.Errorf("%s at %s: names process %q, which is not declared", d.Describe(), d.Line, f.Only)
			}
		}
	}
	return nil
}

// selfKeys are SelfTable's fields, in the order it sets them, made once
// (luatable.Expect; the parent's has no args).
var selfKeys = []lua.LValue{lua.LString("pid"), lua.LString("name"), lua.LString("group"), lua.LString("index"), lua.LString("count"), lua.LString("args")}

// SelfTable is the table a process body receives and ipc.self() returns.
func (e *Env) SelfTable(L *lua.LState) *lua.LTable {
	t := luatable.New(0) // its six fields, no array part
	luatable.Expect(t, selfKeys, 0)
	t.RawSetString("pid", lua.LNumber(os.Getpid()))
	p := e.Self
	if p == nil {
		t.RawSetString("name", lua.LString(ParentName))
		t.RawSetString("group", lua.LString(ParentName))
		t.RawSetString("index", lua.LNumber(1))
		t.RawSetString("count", lua.LNumber(1))
		return t
	}
	t.RawSetString("name", lua.LString(p.Name))
	t.RawSetString("group", lua.LString(p.Group))
	t.RawSetString("index", lua.LNumber(p.Index))
	t.RawSetString("count", lua.LNumber(p.Count))
	t.RawSetString("args", p.Args)
	return t
}

// SelfName is this process's name ("main" in the parent).
func (e *Env) SelfName() string {
	if e.Self != nil {
		return e.Self.Name
	}
	return ParentName
}

func (e *Env) luaSelf(L *lua.LState) int {
	L.Push(e.SelfTable(L))
	return 1
}

// ipc.sleep(seconds)   -- math.huge sleeps until the run ends
func (e *Env) luaSleep(L *lua.LState) int {
	s := float64(L.CheckNumber(1))
	var wake <-chan time.Time
	if !math.IsInf(s, 1) && s != math.MaxFloat64 { // math.huge: until the run ends
		d, err := Seconds("ipc.sleep", s)
		if err != nil {
			L.ArgError(1, err.Error())
		}
		t := time.NewTimer(d)
		defer t.Stop()
		wake = t.C
	}
	e.Slot.SetState(ipc.StateSleeping)
	defer e.Slot.SetState(ipc.StateRunning)
	ctx := L.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case <-wake:
	case <-ctx.Done():
		L.RaiseError("interrupted")
	}
	return 0
}

// Now is the monotonic clock scripts see: seconds since an arbitrary start
// that is the same for every process of a run (CLOCK_MONOTONIC).
func Now() float64 { return float64(ipc.MonoNow()) / 1e9 }

func luaNow(L *lua.LState) int {
	L.Push(lua.LNumber(Now()))
	return 1
}

// ipc.log(...)
func (e *Env) luaLog(L *lua.LState) int {
	n := L.GetTop()
	parts := make([]string, n)
	for i := 1; i <= n; i++ {
		parts[i-1] = L.ToStringMeta(L.Get(i)).String()
	}
	line := strings.Join(parts, "\t")
	if e.Log != nil {
		fmt.Fprintln(e.Log, line)
	}
	if e.Trace != nil && e.running {
		e.Trace.Record(&trace.Event{Op: trace.OpLog, Where: where(L), Time: trace.Now(), Label: line})
	}
	return 0
}

// ipc.expect(cond, message)
func (e *Env) luaExpect(L *lua.LState) int {
	cond := L.Get(1)
	if lua.LVAsBool(cond) {
		L.Push(lua.LTrue)
		return 1
	}
	msg := L.OptString(2, "expectation failed")
	full := fmt.Sprintf("%s: %s", where(L), msg)
	e.Failed = append(e.Failed, full)
	if e.Trace != nil && e.running {
		e.Trace.Record(&trace.Event{Op: trace.OpExpect, Where: where(L), Time: trace.Now(), Outcome: "failed", Label: msg})
	}
	if e.Log != nil {
		fmt.Fprintf(e.Log, "expectation failed: %s\n", full)
	}
	L.Push(lua.LFalse)
	return 1
}

// ipc.mark(label, [fields])
// A point in this process's trace: the label and, optionally, a table of
// fields (strings, numbers, booleans, tables of those) shown with it.
// Nothing happens when the run is not traced.
func (e *Env) luaMark(L *lua.LState) int {
	label := L.CheckString(1)
	var fields map[string]any
	if t, ok := L.Get(2).(*lua.LTable); ok {
		fields = luaFields(t, 0)
	} else if L.Get(2) != lua.LNil {
		L.ArgError(2, "fields must be a table")
	}
	if e.Trace != nil && e.running {
		e.Trace.Record(&trace.Event{Op: trace.OpMark, Where: where(L), Time: trace.Now(), Label: label, Fields: fields})
	}
	return 0
}

// ipc.span(label, fn, ...) -> fn's results
// Calls fn(...) and records the call as an interval of this process's
// trace (a critical section, a phase), with its arguments and results; an
// error in fn is recorded and raised again.
func (e *Env) luaSpan(L *lua.LState) int {
	label := L.CheckString(1)
	fn := L.CheckFunction(2)
	nargs := L.GetTop() - 2
	rec := e.Trace
	if !e.running {
		rec = nil
	}
	var t0 int64
	var begin trace.VC
	var args []any
	if rec != nil {
		t0 = trace.Now()
		begin = rec.Clock().Clone()
		for i := 3; i < 3+nargs; i++ {
			args = append(args, traceValue(L.Get(i), 0))
		}
	}
	before := L.GetTop()
	L.Push(fn)
	for i := 3; i < 3+nargs; i++ {
		L.Push(L.Get(i))
	}
	perr := L.PCall(nargs, lua.MultRet, nil)
	if rec != nil {
		ev := trace.Event{Op: trace.OpSpan, Where: where(L), Time: t0, End: trace.Now(), Label: label, BeginVC: begin,
			Fields: map[string]any{"args": args}}
		if perr != nil {
			ev.Outcome = "error"
			ev.Fields["error"] = perr.Error()
		} else {
			var res []any
			for i := before + 1; i <= L.GetTop(); i++ {
				res = append(res, traceValue(L.Get(i), 0))
			}
			ev.Fields["results"] = res
		}
		rec.Record(&ev)
	}
	if perr != nil {
		if ae, ok := perr.(*lua.ApiError); ok {
			L.Error(ae.Object, 0)
		}
		L.RaiseError("%s", perr.Error())
	}
	return L.GetTop() - before
}

// luaFields converts a table of fields for the trace.
func luaFields(t *lua.LTable, depth int) map[string]any {
	m := map[string]any{}
	t.ForEach(func(k, v lua.LValue) {
		m[lua.LVAsString(k)+keySuffix(k)] = traceValue(v, depth+1)
	})
	return m
}

func keySuffix(k lua.LValue) string {
	switch k.(type) {
	case lua.LString, lua.LNumber:
		return ""
	}
	return k.String()
}

// traceValue converts a Lua value to what JSON can hold: nil, booleans,
// numbers, strings, arrays and objects (4 levels deep; functions and other
// values by their description).
func traceValue(v lua.LValue, depth int) any {
	switch x := v.(type) {
	case *lua.LNilType:
		return nil
	case lua.LBool:
		return bool(x)
	case lua.LNumber:
		return float64(x)
	case lua.LString:
		return string(x)
	case *lua.LTable:
		if depth > 4 {
			return "table"
		}
		if n := x.MaxN(); n > 0 && n == x.Len() {
			arr := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				arr = append(arr, traceValue(x.RawGetInt(i), depth+1))
			}
			return arr
		}
		return luaFields(x, depth)
	}
	return v.String()
}
