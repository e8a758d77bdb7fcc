package bindings

import (
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// The script line of a traced operation without lua.LState.GetStack,
// which allocates a lua.Debug for every call (with the map lookup it
// replaced, a fifth of what tracing added to a traced receive). gopher-lua
// keeps the call frames in an unexported type; its layout is read here
// once, by reflection, and checked: when it is not what this code expects
// (another gopher-lua), callerFrame says so and traceWhere uses GetStack.

type callLayout struct {
	ok                       bool
	current                  uintptr // LState.currentFrame
	fn, parent, pc, tailCall uintptr // callFrame's fields
}

// frameLayout is read on first use, not at package initialisation, which
// runs in every process of a run (reflection's field lookups for a
// process that may never record a line).
var frameLayout = sync.OnceValue(func() (l callLayout) {
	cur, ok := reflect.TypeOf(lua.LState{}).FieldByName("currentFrame")
	if !ok || cur.Type.Kind() != reflect.Pointer || cur.Type.Elem().Kind() != reflect.Struct {
		return l
	}
	cf := cur.Type.Elem()
	field := func(name string, t reflect.Type) (uintptr, bool) {
		f, ok := cf.FieldByName(name)
		return f.Offset, ok && f.Type == t
	}
	intType := reflect.TypeOf(0)
	fn, ok1 := field("Fn", reflect.TypeOf((*lua.LFunction)(nil)))
	parent, ok2 := field("Parent", cur.Type)
	pc, ok3 := field("Pc", intType)
	tail, ok4 := field("TailCall", intType)
	l.current, l.fn, l.parent, l.pc, l.tailCall = cur.Offset, fn, parent, pc, tail
	l.ok = ok1 && ok2 && ok3 && ok4
	return l
})

// knownLayout is frameLayout's answer once asked (a load where
// sync.OnceValue is a call).
var knownLayout atomic.Pointer[callLayout]

// callerFrame is what L.GetStack(1) would find: the function that called
// the Go function running now, and its program counter. ok is false when
// there is none, or the layout is unknown.
func callerFrame(L *lua.LState) (fn *lua.LFunction, pc int, ok bool) {
	fl := knownLayout.Load()
	if fl == nil {
		l := frameLayout()
		fl = &l
		knownLayout.Store(fl)
	}
	if !fl.ok {
		return nil, 0, false
	}
	at := func(p unsafe.Pointer, off uintptr) unsafe.Pointer { return unsafe.Add(p, off) }
	frame := *(*unsafe.Pointer)(at(unsafe.Pointer(L), fl.current))
	level := 1
	for ; level > 0 && frame != nil; frame = *(*unsafe.Pointer)(at(frame, fl.parent)) {
		level--
		if f := *(**lua.LFunction)(at(frame, fl.fn)); f != nil && !f.IsG {
			level -= *(*int)(at(frame, fl.tailCall))
		}
	}
	if level != 0 || frame == nil {
		return nil, 0, false
	}
	return *(**lua.LFunction)(at(frame, fl.fn)), *(*int)(at(frame, fl.pc)), true
}

// CallerLine is the line the Lua function that called the running Go
// function is at, when that function is from source (a script's chunk
// name): what GetStack(1) and GetInfo("Sl") say, without their
// allocations. ok is false otherwise (a Go caller, another source, an
// unknown frame layout): then ask GetStack.
func CallerLine(L *lua.LState, source string) (line int, ok bool) {
	fn, pc, ok := callerFrame(L)
	if !ok || fn == nil || fn.IsG || fn.Proto == nil || pc <= 0 || pc > len(fn.Proto.DbgSourcePositions) || fn.Proto.SourceName != source {
		return 0, false
	}
	return fn.Proto.DbgSourcePositions[pc-1], true
}
