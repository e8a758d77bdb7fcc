package bindings

import (
	"fmt"
	"math"
	"os"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

const shmClass = "ipc.shm"

// shm is a block of shared memory (ipc.Shm) in an anonymous memfd that
// every process maps: nothing appears in /dev/shm.
//
// Numbers. Lua numbers are float64, so every integer up to 2^53 goes in and
// comes out exactly; i64 and u64 values beyond that come out rounded, and a
// value that is not an integer, or does not fit the type, is refused.
type shm struct {
	kobject
	m *ipc.Shm // nil while checking
	// The last mem:read's string, boxed: a read of the same bytes returns
	// it again (ipc.Shm.ReadString), so polling an unchanged block makes
	// no garbage. Kept only up to maxKeptRead bytes.
	lastRead  string
	lastReadV lua.LValue
}

const maxKeptRead = 1 << 20

func openShm(L *lua.LState, mod *lua.LTable, env *Env) {
	env.registerClassOf(L, shmClass, func() map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			"read":  shmRead,
			"write": shmWrite,
			"size":  shmSize,
			"get":   shmGet,
			"set":   shmSet,
			"add":   shmAdd,
			"cas":   shmCAS,
		}
	}, nil)
	env.setFunc(L, mod, "shm", env.luaShm)
}

// ipc.shm(name, size) -> mem
// size bytes, zero-filled, shared by every process of the run.
func (e *Env) luaShm(L *lua.LState) int {
	name := L.CheckString(1)
	size := checkInt(L, 2, "size")
	d := e.declareObject(L, "shm", name, fmt.Sprintf("size=%d", size))
	m := &shm{kobject: kobject{decl: d, what: d.Describe()}}
	d.Object = m
	if size <= 0 || size > ipc.MaxShmSize { // in every mode: the same error everywhere
		L.RaiseError("%s: size %d must be between 1 and %d bytes", m.what, size, ipc.MaxShmSize)
	}
	e.Make(L, d, memfdMaker(d, &m.m,
		func() (*ipc.Shm, error) { return ipc.NewShm(name, size) },
		func(f *os.File) (*ipc.Shm, error) { return ipc.OpenShm(f, name) }))
	L.Push(newUserData(L, shmClass, m))
	return 1
}

// Release unmaps the parent's copy at the end of the run.
func (m *shm) Release() {
	if m.m != nil {
		m.m.Close()
	}
}

func checkShm(L *lua.LState) *shm {
	m := checkClass[*shm](L, 1, "shm")
	if m.m == nil {
		m.notHere(L)
	}
	return m
}

// offset reads the byte offset at n: an integer (the bounds are checked by
// ipc.Shm, whose errors say what did not fit).
func (m *shm) offset(L *lua.LState, n int, op string) int {
	v := float64(L.CheckNumber(n))
	if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
		L.RaiseError("%s: %s: offset %v is not an integer", m.what, op, v)
	}
	return int(v)
}

// numType reads the number type at n ("i8" ... "f64").
func (m *shm) numType(L *lua.LState, n int, op string) ipc.NumType {
	t, err := ipc.ParseNumType(L.CheckString(n))
	if err != nil {
		L.RaiseError("%s: %s: %v", m.what, op, err)
	}
	return t
}

func (m *shm) fail(L *lua.LState, err error) {
	L.RaiseError("%s", err.Error())
}

// mem:read(off, n) -> string of n bytes
// mem:read(off, n, {into = b}) -> n: the bytes go into the buffer b
func shmRead(L *lua.LState) int {
	m := checkShm(L)
	off := m.offset(L, 2, "read")
	n := checkInt(L, 3, "byte count")
	if into := intoBuffer(L, optTable(L, 4), m.what, "read"); into != nil {
		if err := m.m.ReadInto(off, into.room(L, n, m.what, "read")); err != nil {
			m.fail(L, err)
		}
		if m.decl.Trace != nil {
			m.trace(L, trace.OpRead, "bytes", off, n, nil)
		}
		L.Push(into.filled(n))
		return 1
	}
	s, err := m.m.ReadString(off, n, m.lastRead)
	if err != nil {
		m.fail(L, err)
	}
	if m.decl.Trace != nil {
		m.trace(L, trace.OpRead, "bytes", off, n, nil)
	}
	if m.lastReadV != nil && len(s) == len(m.lastRead) && unsafe.StringData(s) == unsafe.StringData(m.lastRead) {
		L.Push(m.lastReadV) // unchanged: the same string, nothing allocated
		return 1
	}
	v := lua.LString(s)
	m.lastRead, m.lastReadV = "", nil
	if n <= maxKeptRead {
		m.lastRead, m.lastReadV = s, v
	}
	L.Push(v)
	return 1
}

// mem:write(off, bytes) (a string or a buffer)
// Not atomic: guard records that others read with a mutex.
func shmWrite(L *lua.LState) int {
	m := checkShm(L)
	off := m.offset(L, 2, "write")
	b := luaBytes(L, 3)
	if err := m.m.Write(off, b); err != nil {
		m.fail(L, err)
	}
	if m.decl.Trace != nil {
		m.trace(L, trace.OpWrite, "bytes", off, len(b), nil)
	}
	return 0
}

// mem:size() -> bytes
func shmSize(L *lua.LState) int {
	L.Push(lua.LNumber(checkShm(L).m.Size()))
	return 1
}

// mem:get(t, off) -> number
// t is "i8" "u8" "i16" "u16" "i32" "u32" "i64" "u64" "f32" "f64"; at an
// offset that is a multiple of the type's size the load is atomic.
func shmGet(L *lua.LState) int {
	m := checkShm(L)
	t := m.numType(L, 2, "get")
	off := m.offset(L, 3, "get")
	v, err := m.m.Get(t, off)
	if err != nil {
		m.fail(L, err)
	}
	if m.decl.Trace != nil {
		m.trace(L, trace.OpGet, t.String(), off, t.Size(), map[string]any{"value": v.Float64()})
	}
	L.Push(lua.LNumber(v.Float64()))
	return 1
}

// mem:set(t, off, v)
func shmSet(L *lua.LState) int {
	m := checkShm(L)
	t := m.numType(L, 2, "set")
	off := m.offset(L, 3, "set")
	if err := m.m.Set(t, off, ipc.FloatNumber(float64(L.CheckNumber(4)))); err != nil {
		m.fail(L, err)
	}
	if m.decl.Trace != nil {
		m.trace(L, trace.OpSet, t.String(), off, t.Size(), map[string]any{"value": float64(L.CheckNumber(4))})
	}
	return 0
}

// mem:add(t, off, delta) -> new value
// Atomic; off must be a multiple of the type's size. Integers wrap around
// as in C.
func shmAdd(L *lua.LState) int {
	m := checkShm(L)
	t := m.numType(L, 2, "add")
	off := m.offset(L, 3, "add")
	v, err := m.m.Add(t, off, ipc.FloatNumber(float64(L.CheckNumber(4))))
	if err != nil {
		m.fail(L, err)
	}
	if m.decl.Trace != nil {
		m.trace(L, trace.OpAdd, t.String(), off, t.Size(), map[string]any{"delta": float64(L.CheckNumber(4)), "value": v.Float64()})
	}
	L.Push(lua.LNumber(v.Float64()))
	return 1
}

// mem:cas(t, off, old, new) -> boolean
// Atomically stores new if the value is old; says whether it did.
func shmCAS(L *lua.LState) int {
	m := checkShm(L)
	t := m.numType(L, 2, "cas")
	off := m.offset(L, 3, "cas")
	old, nw := float64(L.CheckNumber(4)), float64(L.CheckNumber(5))
	ok, err := m.m.CAS(t, off, ipc.FloatNumber(old), ipc.FloatNumber(nw))
	if err != nil {
		m.fail(L, err)
	}
	if m.decl.Trace != nil {
		m.trace(L, trace.OpCAS, t.String(), off, t.Size(), map[string]any{"old": old, "new": nw, "swapped": ok})
	}
	L.Push(lua.LBool(ok))
	return 1
}

// trace records an access (docs/TRACING.md: what the race detector reads).
func (m *shm) trace(L *lua.LState, op, typ string, off, n int, fields map[string]any) {
	m.decl.Trace.Record(&trace.Event{Op: op, Kind: m.decl.Kind, Object: m.decl.Name, Where: traceWhere(L), Time: trace.Now(),
		Type: typ, Off: int64(off), Len: int64(n), Fields: fields})
}
