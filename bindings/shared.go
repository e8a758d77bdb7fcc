package bindings

import (
	"fmt"
	"math"
	"os"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

const (
	sharedClass      = "ipc.shared"
	sharedArrayClass = "ipc.shared.array"
)

// shared is a set of named numeric variables (ipc.Shared) on a block of
// shared memory: v.meals reads a field, v.meals = 3 writes it, v.eating[3]
// is element 3 of an array field, and v:add / cas / max / min / swap
// update a field atomically by name. The fields are laid out sorted by
// name, each aligned to its size (v:offset(field) says where), so the
// bytes can also be read as an ipc.shm would be.
type shared struct {
	kobject
	v *ipc.Shared // nil while checking
}

// sharedArray is the value of an array field: v.eating.
type sharedArray struct {
	s *shared
	f ipc.SharedField
}

var sharedMethods = []namedFunc{
	{"add", sharedAdd},
	{"cas", sharedCAS},
	{"max", sharedMax},
	{"min", sharedMin},
	{"swap", sharedSwap},
	{"offset", sharedOffset},
	{"read", sharedRead},
	{"size", sharedSize},
}

// isSharedMethod reports whether name is a method of a shared value.
func isSharedMethod(name string) bool {
	for _, m := range sharedMethods {
		if m.name == name {
			return true
		}
	}
	return false
}

func openShared(L *lua.LState, mod *lua.LTable, env *Env) {
	env.registerClassThen(L, sharedClass, func() map[string]lua.LGFunction { return funcMap(sharedMethods, 0) }, func(L *lua.LState, v any, key string) lua.LValue {
		s := v.(*shared)
		if s.v == nil {
			s.notHere(L)
		}
		f, ok := s.v.Field(key)
		if !ok {
			L.RaiseError("%s: no field %q (fields: %s)", s.what, key, ipc.DescribeShared(s.v.Fields()))
		}
		if f.Count > 0 {
			return newUserData(L, sharedArrayClass, &sharedArray{s: s, f: f})
		}
		return s.get(L, f.Name, 0)
	}, func(mt *lua.LTable) {
		L.SetField(mt, "__newindex", L.NewFunction(func(L *lua.LState) int {
			s := checkShared(L)
			key := L.CheckString(2)
			if f, ok := s.v.Field(key); ok && f.Count > 0 {
				L.RaiseError("%s: %s is an array of %d: assign its elements (v.%s[i] = x)", s.what, key, f.Count, key)
			}
			s.set(L, key, 0, 3)
			return 0
		}))
	})
	env.registerClassThen(L, sharedArrayClass, func() map[string]lua.LGFunction {
		return map[string]lua.LGFunction{}
	}, nil, func(amt *lua.LTable) {
		L.SetField(amt, "__index", L.NewFunction(func(L *lua.LState) int {
			a := checkClass[*sharedArray](L, 1, "shared array")
			L.Push(a.s.get(L, a.f.Name, a.index(L, 2)))
			return 1
		}))
		L.SetField(amt, "__newindex", L.NewFunction(func(L *lua.LState) int {
			a := checkClass[*sharedArray](L, 1, "shared array")
			a.s.set(L, a.f.Name, a.index(L, 2), 3)
			return 0
		}))
		L.SetField(amt, "__len", L.NewFunction(func(L *lua.LState) int {
			L.Push(lua.LNumber(checkClass[*sharedArray](L, 1, "shared array").f.Count))
			return 1
		}))
	})
	env.setFunc(L, mod, "shared", env.luaShared)
}

// ipc.shared(name, {field = "i32", array = {"u8", 5}, ...}) -> v
func (e *Env) luaShared(L *lua.LState) int {
	name := L.CheckString(1)
	layout := L.CheckTable(2)
	var fields []ipc.SharedField
	var bad string
	layout.ForEach(func(k, v lua.LValue) {
		if bad != "" {
			return
		}
		key, ok := k.(lua.LString)
		if !ok {
			bad = fmt.Sprintf("field names must be strings, got %s", typeName(k))
			return
		}
		if isSharedMethod(string(key)) {
			bad = fmt.Sprintf("field %q has the name of a method (v:%s): choose another", key, key)
			return
		}
		f := ipc.SharedField{Name: string(key)}
		typ := v
		if t, ok := v.(*lua.LTable); ok {
			typ = t.RawGetInt(1)
			n, ok := t.RawGetInt(2).(lua.LNumber)
			if !ok || float64(n) != math.Trunc(float64(n)) || n < 1 || n > ipc.MaxSharedCount {
				bad = fmt.Sprintf("field %q: an array is {type, length} with a length from 1 to %d", key, ipc.MaxSharedCount)
				return
			}
			f.Count = int(n)
		}
		ts, ok := typ.(lua.LString)
		if !ok {
			bad = fmt.Sprintf("field %q: the type must be a string such as \"i32\", got %s", key, typeName(typ))
			return
		}
		var err error
		if f.Type, err = ipc.ParseNumType(string(ts)); err != nil {
			bad = fmt.Sprintf("field %q: %v", key, err)
			return
		}
		fields = append(fields, f)
	})
	if bad != "" {
		L.ArgError(2, bad)
	}
	laid, _, err := ipc.LayoutShared(fields)
	if err != nil {
		L.ArgError(2, err.Error())
	}
	d := e.declareObject(L, "shared", name, ipc.DescribeShared(laid))
	s := &shared{kobject: kobject{decl: d, what: d.Describe()}}
	d.Object = s
	// While checking nothing is made; a view with the layout alone answers
	// field lookups with an error that says so.
	e.Make(L, d, memfdMaker(d, &s.v,
		func() (*ipc.Shared, error) { return ipc.NewShared(name, fields) },
		func(f *os.File) (*ipc.Shared, error) { return ipc.OpenShared(f, name, fields) }))
	L.Push(newUserData(L, sharedClass, s))
	return 1
}

// Release unmaps the parent's copy at the end of the run.
func (s *shared) Release() {
	if s.v != nil {
		s.v.Close()
	}
}

func checkShared(L *lua.LState) *shared {
	s := checkClass[*shared](L, 1, "shared")
	if s.v == nil {
		s.notHere(L)
	}
	return s
}

// index reads the 1-based element index at n (a Lua array's).
func (a *sharedArray) index(L *lua.LState, n int) int {
	v := float64(L.CheckNumber(n))
	if v != math.Trunc(v) || v < 1 || v > float64(a.f.Count) {
		L.RaiseError("%s: index %v is outside %s[1..%d]", a.s.what, v, a.f.Name, a.f.Count)
	}
	return int(v) - 1
}

// locate finds field name (element i, 0-based) or raises.
func (s *shared) locate(L *lua.LState, name string, i int) (ipc.NumType, int) {
	t, off, err := s.v.Locate(name, i)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	return t, off
}

func (s *shared) get(L *lua.LState, name string, i int) lua.LValue {
	t, off := s.locate(L, name, i)
	v, err := s.v.Get(t, off)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	if s.decl.Trace != nil {
		s.trace(L, trace.OpGet, t, off)
	}
	return lua.LNumber(v.Float64())
}

func (s *shared) set(L *lua.LState, name string, i, arg int) {
	t, off := s.locate(L, name, i)
	if err := s.v.Set(t, off, ipc.FloatNumber(float64(L.CheckNumber(arg)))); err != nil {
		L.RaiseError("%s", err.Error())
	}
	if s.decl.Trace != nil {
		s.trace(L, trace.OpSet, t, off)
	}
}

// trace records an access to a field, as mem:get/set/add... are recorded
// (docs/TRACING.md): what the race detector reads (docs/CHECKING.md).
func (s *shared) trace(L *lua.LState, op string, t ipc.NumType, off int) {
	s.decl.Trace.Record(&trace.Event{Op: op, Kind: s.decl.Kind, Object: s.decl.Name, Where: traceWhere(L), Time: trace.Now(),
		Type: t.String(), Off: int64(off), Len: int64(t.Size())})
}

// target reads `field [, i]` from argument 2 on: an array field takes a
// 1-based index. It returns the type, offset and the next argument.
func (s *shared) target(L *lua.LState) (ipc.NumType, int, int) {
	name := L.CheckString(2)
	f, ok := s.v.Field(name)
	if !ok {
		L.RaiseError("%s: no field %q (fields: %s)", s.what, name, ipc.DescribeShared(s.v.Fields()))
	}
	if f.Count == 0 {
		t, off := s.locate(L, name, 0)
		return t, off, 3
	}
	i := (&sharedArray{s: s, f: f}).index(L, 3)
	t, off := s.locate(L, name, i)
	return t, off, 4
}

type rmwFunc func(m *ipc.Shm, t ipc.NumType, off int, v ipc.Number) (ipc.Number, error)

func sharedRMW(L *lua.LState, name string, op rmwFunc) int {
	s := checkShared(L)
	t, off, n := s.target(L)
	v, err := op(s.v.Shm, t, off, ipc.FloatNumber(float64(L.CheckNumber(n))))
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	if s.decl.Trace != nil {
		s.trace(L, name, t, off)
	}
	L.Push(lua.LNumber(v.Float64()))
	return 1
}

// v:add(field, [i,] delta) -> new value (atomic; integers wrap as in C)
func sharedAdd(L *lua.LState) int { return sharedRMW(L, trace.OpAdd, (*ipc.Shm).Add) }

// v:max(field, [i,] x) -> value before (atomic: raised to x if x is greater)
func sharedMax(L *lua.LState) int { return sharedRMW(L, "max", (*ipc.Shm).Max) }

// v:min(field, [i,] x) -> value before (atomic: lowered to x if x is smaller)
func sharedMin(L *lua.LState) int { return sharedRMW(L, "min", (*ipc.Shm).Min) }

// v:swap(field, [i,] x) -> value before (atomic exchange)
func sharedSwap(L *lua.LState) int { return sharedRMW(L, "swap", (*ipc.Shm).Swap) }

// v:cas(field, [i,] old, new) -> boolean (atomic compare-and-swap)
func sharedCAS(L *lua.LState) int {
	s := checkShared(L)
	t, off, n := s.target(L)
	old, nw := float64(L.CheckNumber(n)), float64(L.CheckNumber(n+1))
	ok, err := s.v.CAS(t, off, ipc.FloatNumber(old), ipc.FloatNumber(nw))
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	if s.decl.Trace != nil {
		s.trace(L, trace.OpCAS, t, off)
	}
	L.Push(lua.LBool(ok))
	return 1
}

// v:offset(field, [i]) -> byte offset, type name
// Where the field (element i of an array) lives in the bytes.
func sharedOffset(L *lua.LState) int {
	s := checkShared(L)
	name := L.CheckString(2)
	i := 0
	if f, ok := s.v.Field(name); ok && f.Count > 0 {
		i = 0
		if L.Get(3) != lua.LNil {
			i = (&sharedArray{s: s, f: f}).index(L, 3)
		}
	}
	t, off := s.locate(L, name, i)
	L.Push(lua.LNumber(off))
	L.Push(lua.LString(t.String()))
	return 2
}

// v:read(off, n) -> string: the raw bytes, as ipc.shm's read.
func sharedRead(L *lua.LState) int {
	s := checkShared(L)
	off, n := checkInt(L, 2, "offset"), checkInt(L, 3, "byte count")
	b, err := s.v.Read(off, n)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	if s.decl.Trace != nil {
		s.decl.Trace.Record(&trace.Event{Op: trace.OpRead, Kind: s.decl.Kind, Object: s.decl.Name, Where: traceWhere(L), Time: trace.Now(),
			Type: "bytes", Off: int64(off), Len: int64(n)})
	}
	L.Push(lua.LString(string(b)))
	return 1
}

// v:size() -> bytes
func sharedSize(L *lua.LState) int {
	L.Push(lua.LNumber(checkShared(L).v.Size()))
	return 1
}
