package bindings

import (
	"reflect"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// The script line of a traced operation without lua.LState.GetStack,
// which allocates a lua.Debug for every call (with the map lookup it
// replaced, a fifth of what tracing added to a traced receive). gopher-lua
// keeps the call frames in an unexported type; its layout is read here
// once, by reflection, and checked: when it is not what this code expects
// (another gopher-lua), callerFrame says so and traceWhere uses GetStack.

var frameLayout struct {
	ok                       bool
	current                  uintptr // LState.currentFrame
	fn, parent, pc, tailCall uintptr // callFrame's fields
}

func init() {
	cur, ok := reflect.TypeOf(lua.LState{}).FieldByName("currentFrame")
	if !ok || cur.Type.Kind() != reflect.Pointer || cur.Type.Elem().Kind() != reflect.Struct {
		return
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
	frameLayout.current, frameLayout.fn, frameLayout.parent, frameLayout.pc, frameLayout.tailCall = cur.Offset, fn, parent, pc, tail
	frameLayout.ok = ok1 && ok2 && ok3 && ok4
}

// callerFrame is what L.GetStack(1) would find: the function that called
// the Go function running now, and its program counter. ok is false when
// there is none, or the layout is unknown.
func callerFrame(L *lua.LState) (fn *lua.LFunction, pc int, ok bool) {
	if !frameLayout.ok {
		return nil, 0, false
	}
	at := func(p unsafe.Pointer, off uintptr) unsafe.Pointer { return unsafe.Add(p, off) }
	frame := *(*unsafe.Pointer)(at(unsafe.Pointer(L), frameLayout.current))
	level := 1
	for ; level > 0 && frame != nil; frame = *(*unsafe.Pointer)(at(frame, frameLayout.parent)) {
		level--
		if f := *(**lua.LFunction)(at(frame, frameLayout.fn)); f != nil && !f.IsG {
			level -= *(*int)(at(frame, frameLayout.tailCall))
		}
	}
	if level != 0 || frame == nil {
		return nil, 0, false
	}
	return *(**lua.LFunction)(at(frame, frameLayout.fn)), *(*int)(at(frame, frameLayout.pc)), true
}
