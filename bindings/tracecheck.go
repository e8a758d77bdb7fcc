package bindings

import (
	"fmt"
	"math"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/check"
)

// report.trace: the recorded run, with checks over it. A check returns
// true, or false and an explanation that names the events (processes,
// file:line, times) and shows the smallest window of the trace as Mermaid
// text; ipc.expect takes the pair as it is:
//
//	ipc.expect(report.trace:exclusive("crit"))
const traceClass = "ipc.trace"

// TraceValue is the Lua value of a recorded run (report.trace). path is
// where the trace was written ("" when nowhere); an explanation ends
// with it.
func TraceValue(L *lua.LState, t *check.Trace, path string) lua.LValue {
	return newTraceValue(L, &luaTrace{t: t, path: path})
}

// LazyTraceValue is TraceValue for the checks' view that make makes, on
// the value's first use: a run traced only to be written (--trace) has
// its report.trace, and never builds the view (check.New, a third of the
// supervisor's memory at the end of a 400k-event run) unless the script
// looks at it.
func LazyTraceValue(L *lua.LState, make func() *check.Trace, path string) lua.LValue {
	return newTraceValue(L, &luaTrace{make: make, path: path})
}

func newTraceValue(L *lua.LState, lt *luaTrace) lua.LValue {
	if _, ok := L.GetTypeMetatable(traceClass).(*lua.LTable); !ok {
		registerClass(L, traceClass, map[string]lua.LGFunction{
			"events":         traceEvents,
			"count":          traceCount,
			"filter":         traceFilter,
			"exclusive":      traceExclusive,
			"each_once":      traceEachOnce,
			"fifo":           traceFIFO,
			"happens_before": traceHappensBefore,
			"concurrent":     traceConcurrent,
			"bounded":        traceBounded,
			"progress":       traceProgress,
			"linearizable":   traceLinearizable,
			"races":          traceRaces,
		}, func(L *lua.LState, v any, key string) lua.LValue {
			if key == "path" && v.(*luaTrace).path != "" {
				return lua.LString(v.(*luaTrace).path)
			}
			return lua.LNil
		})
	}
	return newUserData(L, traceClass, lt)
}

type luaTrace struct {
	t    *check.Trace
	make func() *check.Trace // when t is nil: makes it
	path string
}

// tr is the checks' view, made on first use.
func (t *luaTrace) tr() *check.Trace {
	if t.t == nil {
		t.t, t.make = t.make(), nil
	}
	return t.t
}

func (t *luaTrace) String() string { return fmt.Sprintf("trace (%d events)", len(t.tr().Events)) }

func checkTrace(L *lua.LState) *luaTrace { return checkClass[*luaTrace](L, 1, "trace") }

// result pushes what a check returns: true, or false and the explanation.
func (t *luaTrace) result(L *lua.LState, v *check.Violation) int {
	if v == nil {
		L.Push(lua.LTrue)
		return 1
	}
	msg := v.Error()
	if t.path != "" {
		msg += "\n  trace: " + t.path
	}
	L.Push(lua.LFalse)
	L.Push(lua.LString(msg))
	return 2
}

// filterArg reads a selection: a label string, or a table with any of
// proc, object, kind (an operation such as "send", or an object kind such
// as "mailbox") and label.
func filterArg(L *lua.LState, n int) check.Filter {
	switch v := L.Get(n).(type) {
	case lua.LString:
		return check.Filter{Label: string(v)}
	case *lua.LTable:
		f := check.Filter{
			Proc:   optString(L, v, "proc", ""),
			Object: optString(L, v, "object", ""),
			Kind:   optString(L, v, "kind", ""),
			Label:  optString(L, v, "label", ""),
		}
		v.ForEach(func(k, _ lua.LValue) {
			switch k.String() {
			case "proc", "object", "kind", "label":
			default:
				L.ArgError(n, fmt.Sprintf("unknown filter field %q (want proc, object, kind, label)", k.String()))
			}
		})
		return f
	case *lua.LNilType:
		return check.Filter{}
	}
	L.ArgError(n, "a label or a filter table {proc=, object=, kind=, label=} expected, got "+typeName(L.Get(n)))
	return check.Filter{}
}

// trace:events([filter]) -> list of event tables
func traceEvents(L *lua.LState) int {
	t := checkTrace(L)
	out := L.NewTable()
	for _, e := range t.tr().Select(filterArg(L, 2)) {
		out.Append(eventTable(L, t.tr(), e))
	}
	L.Push(out)
	return 1
}

// trace:count([filter]) -> number of events
func traceCount(L *lua.LState) int {
	t := checkTrace(L)
	L.Push(lua.LNumber(len(t.tr().Select(filterArg(L, 2)))))
	return 1
}

// trace:filter(filter) -> the trace of the matching events only
func traceFilter(L *lua.LState) int {
	t := checkTrace(L)
	L.Push(TraceValue(L, t.tr().Subset(filterArg(L, 2)), t.path))
	return 1
}

// eventTable is an event as Lua sees it: the recorded fields, with times
// in seconds from the run's first event.
func eventTable(L *lua.LState, t *check.Trace, e *check.Event) *lua.LTable {
	r := L.NewTable()
	set := func(k, v string) {
		if v != "" {
			r.RawSetString(k, lua.LString(v))
		}
	}
	set("proc", e.Proc)
	r.RawSetString("seq", lua.LNumber(e.Seq))
	set("op", e.Op)
	set("kind", e.Kind)
	set("object", e.Object)
	set("where", e.Where)
	set("outcome", e.Outcome)
	set("label", e.Label)
	set("type", e.Type)
	set("peer", e.Peer)
	r.RawSetString("time", lua.LNumber(float64(e.Time-t.Start)/1e9))
	r.RawSetString("end_time", lua.LNumber(float64(e.End-t.Start)/1e9))
	if e.Msg != nil {
		m := L.NewTable()
		if e.Msg.Src >= 0 && e.Msg.Src < len(t.Procs) {
			m.RawSetString("src", lua.LString(t.Procs[e.Msg.Src]))
		}
		m.RawSetString("seq", lua.LNumber(e.Msg.Seq))
		r.RawSetString("msg", m)
	}
	if e.Off != 0 || e.Len != 0 {
		r.RawSetString("off", lua.LNumber(e.Off))
		r.RawSetString("len", lua.LNumber(e.Len))
	}
	if len(e.Fields) > 0 {
		r.RawSetString("fields", goToLua(L, map[string]any(e.Fields)))
	}
	return r
}

// trace:exclusive(label) / trace:exclusive(writer_label, reader_label)
func traceExclusive(L *lua.LState) int {
	t := checkTrace(L)
	label := L.CheckString(2)
	if L.GetTop() >= 3 && L.Get(3) != lua.LNil {
		return t.result(L, t.tr().ExclusiveRW(label, L.CheckString(3)))
	}
	return t.result(L, t.tr().Exclusive(label))
}

// trace:each_once(box)
func traceEachOnce(L *lua.LState) int {
	t := checkTrace(L)
	return t.result(L, t.tr().EachOnce(objectName(L, 2)))
}

// trace:fifo(box)
func traceFIFO(L *lua.LState) int {
	t := checkTrace(L)
	return t.result(L, t.tr().FIFO(objectName(L, 2)))
}

// objectName accepts an object (a mailbox...) or its name.
func objectName(L *lua.LState, n int) string {
	if ud, ok := L.Get(n).(*lua.LUserData); ok {
		if name, ok := L.GetField(ud, "name").(lua.LString); ok {
			return string(name)
		}
		L.ArgError(n, "an object with a name, or its name, expected")
	}
	return L.CheckString(n)
}

// trace:happens_before(a, b): a and b are labels or filter tables
func traceHappensBefore(L *lua.LState) int {
	t := checkTrace(L)
	return t.result(L, t.tr().HappensBefore(filterArg(L, 2), filterArg(L, 3)))
}

// trace:concurrent(a, b)
func traceConcurrent(L *lua.LState) int {
	t := checkTrace(L)
	return t.result(L, t.tr().Concurrent(filterArg(L, 2), filterArg(L, 3)))
}

// trace:bounded(label, n)
func traceBounded(L *lua.LState) int {
	t := checkTrace(L)
	label := L.CheckString(2)
	n := checkInt(L, 3, "bound")
	if n < 1 {
		L.ArgError(3, "the bound must be >= 1")
	}
	return t.result(L, t.tr().Bounded(label, n))
}

// trace:progress(process, [share = 0.5])
func traceProgress(L *lua.LState) int {
	t := checkTrace(L)
	proc := L.CheckString(2)
	share := float64(L.OptNumber(3, 0.5))
	if share < 0 || share > 1 || math.IsNaN(share) {
		L.ArgError(3, "the share must be between 0 and 1")
	}
	return t.result(L, t.tr().Progress(proc, share))
}

// trace:races() -> list of explanations (empty when there is none)
func traceRaces(L *lua.LState) int {
	t := checkTrace(L)
	out := L.NewTable()
	for _, r := range t.tr().Races() {
		out.Append(lua.LString(t.tr().Explain(r).Error()))
	}
	L.Push(out)
	return 1
}

// trace:linearizable(object, model)
// model = {init = function() -> state,
//
//	step = function(state, input, output) -> ok, new_state,
//	partition = function(input) -> key (optional),
//	describe = function(input, output) -> string (optional)}
//
// The object's operations are the spans labelled object: input is what
// ipc.span passed to fn (one value, or a list of several), output what fn
// returned.
func traceLinearizable(L *lua.LState) int {
	t := checkTrace(L)
	object := L.CheckString(2)
	mt := L.CheckTable(3)
	fn := func(name string, required bool) *lua.LFunction {
		switch f := mt.RawGetString(name).(type) {
		case *lua.LFunction:
			return f
		case *lua.LNilType:
			if !required {
				return nil
			}
		}
		L.ArgError(3, "model."+name+" must be a function")
		return nil
	}
	initFn, stepFn, partFn, descFn := fn("init", true), fn("step", true), fn("partition", false), fn("describe", false)
	call := func(f *lua.LFunction, nret int, args ...lua.LValue) []lua.LValue {
		L.Push(f)
		for _, a := range args {
			L.Push(a)
		}
		L.Call(len(args), nret) // an error in the model is the script's: it propagates
		out := make([]lua.LValue, nret)
		for i := nret - 1; i >= 0; i-- {
			out[i] = L.Get(-1)
			L.Pop(1)
		}
		return out
	}
	m := check.Model{
		Init: func() any { return call(initFn, 1)[0] },
		Step: func(state, in, out any) (bool, any) {
			r := call(stepFn, 2, state.(lua.LValue), goToLua(L, in), goToLua(L, out))
			return lua.LVAsBool(r[0]), r[1]
		},
		Equal: func(a, b any) bool { return luaKey(a.(lua.LValue)) == luaKey(b.(lua.LValue)) },
	}
	if partFn != nil {
		m.Partition = func(in any) string { return luaKey(call(partFn, 1, goToLua(L, in))[0]) }
	}
	m.Describe = func(in, out any) string {
		if descFn != nil {
			return L.ToStringMeta(call(descFn, 1, goToLua(L, in), goToLua(L, out))[0]).String()
		}
		return luaKey(goToLua(L, in)) + " -> " + luaKey(goToLua(L, out))
	}
	return t.result(L, t.tr().Linearizable(object, m))
}

// goToLua converts a recorded value (as JSON decodes it: nil, bool,
// float64, string, []any, map[string]any; integers too) to Lua.
func goToLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case lua.LValue:
		return x
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case int:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case uint64:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case []any:
		t := L.CreateTable(len(x), 0)
		for _, e := range x {
			t.Append(goToLua(L, e))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(x))
		for k, e := range x {
			t.RawSetString(k, goToLua(L, e))
		}
		return t
	}
	return lua.LString(fmt.Sprint(v))
}

// luaKey is a canonical text of a Lua value: equal values (tables compared
// by content, keys sorted) give equal keys. It is how the search compares
// model states, and how a partition key is named.
func luaKey(v lua.LValue) string {
	var b strings.Builder
	writeKey(&b, v, 0)
	return b.String()
}

func writeKey(b *strings.Builder, v lua.LValue, depth int) {
	switch x := v.(type) {
	case lua.LString:
		fmt.Fprintf(b, "%q", string(x))
	case *lua.LTable:
		if depth > 32 {
			b.WriteString("{...}")
			return
		}
		type kv struct {
			k string
			v lua.LValue
		}
		var kvs []kv
		x.ForEach(func(k, v lua.LValue) {
			var kb strings.Builder
			writeKey(&kb, k, depth+1)
			kvs = append(kvs, kv{kb.String(), v})
		})
		sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
		b.WriteByte('{')
		for i, e := range kvs {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("[" + e.k + "]=")
			writeKey(b, e.v, depth+1)
		}
		b.WriteByte('}')
	default:
		b.WriteString(v.String())
	}
}
