package bindings

import (
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// traceWhere's read of the caller's frame names the same line as
// GetStack(1) does, wherever the call is: a chunk, a nested function, a
// tail call, pcall, a coroutine, a method in a loop. So does where's, and
// it says what L.Where says.
func TestTraceWhereMatchesGetStack(t *testing.T) {
	if !frameLayout().ok {
		t.Fatal("gopher-lua's call frames are not laid out as trace_where.go expects: traceWhere falls back to GetStack (slower)")
	}
	L := lua.NewState()
	defer L.Close()
	n := 0
	L.SetGlobal("here", L.NewFunction(func(L *lua.LState) int {
		n++
		if w, lw := where(L), luaWhere(L); w != lw {
			t.Errorf("call %d: where %q, L.Where %q", n, w, lw)
		}
		fn, pc, ok := callerFrame(L)
		dbg, ok2 := L.GetStack(1)
		if ok != ok2 {
			t.Errorf("call %d: callerFrame ok %v, GetStack ok %v", n, ok, ok2)
			return 0
		}
		if !ok {
			return 0
		}
		L.GetInfo("Sl", dbg, lua.LNil)
		want := where(L) // what GetStack gives, as traceWhere did before
		if dbg.CurrentLine >= 0 {
			want = dbg.Source + ":" + itoa(dbg.CurrentLine)
		}
		if fn.IsG != (dbg.CurrentLine < 0) {
			t.Errorf("call %d: callerFrame's function is a Go one: %v; GetStack's line %d", n, fn.IsG, dbg.CurrentLine)
		}
		if !fn.IsG && (pc < 1 || fn.Proto.DbgSourcePositions[pc-1] != dbg.CurrentLine || fn.Proto.SourceName != dbg.Source) {
			t.Errorf("call %d: callerFrame says pc %d, GetStack %s:%d", n, pc, dbg.Source, dbg.CurrentLine)
		}
		if got := traceWhere(L); got != want {
			t.Errorf("call %d: traceWhere %q, want %q", n, got, want)
		}
		return 0
	}))
	err := L.DoString(`
here()
local function f(x)
  here()
  if x > 0 then return f(x - 1) end
  return here()
end
f(3)
pcall(here)
pcall(function() here() end)
local co = coroutine.create(function() here(); coroutine.yield(); here() end)
coroutine.resume(co); coroutine.resume(co)
local o = {m = function(self) here() end}
for i = 1, 3 do o:m() end
local t = setmetatable({}, {__index = function() here() return 1 end})
local _ = t.x
`)
	if err != nil {
		t.Fatal(err)
	}
	if n < 14 {
		t.Errorf("here was called %d times, want at least 14", n)
	}
}

func itoa(i int) string { return lua.LNumber(i).String() }
