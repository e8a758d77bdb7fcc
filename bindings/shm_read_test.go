package bindings

import (
	"runtime"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// mem:read returns what is there now, the same string again while the
// bytes are unchanged, and a new one once they change.
func TestShmReadReuse(t *testing.T) {
	L, _ := parentState(t, `ipc = require("ipc"); mem = ipc.shm("m", 65536)`)
	err := L.DoString(`
		mem:write(0, string.rep("a", 65536))
		local a = mem:read(0, 65536)
		assert(#a == 65536 and a == string.rep("a", 65536))
		local b = mem:read(0, 65536)
		assert(a == b)
		mem:write(100, "z")
		local c = mem:read(0, 65536)
		assert(c ~= a and c:sub(100, 102) == "aza" and a:sub(101, 101) == "a", "the earlier string is unchanged")
		assert(mem:read(100, 1) == "z" and mem:read(0, 65536) == c)
		assert(mem:read(0, 0) == "")
	`)
	if err != nil {
		t.Fatal(err)
	}
}

// Reading an unchanged 64 KiB block allocates nothing per read (a count
// of bytes, not a time).
func TestShmReadUnchangedAllocs(t *testing.T) {
	L, _ := parentState(t, `ipc = require("ipc"); mem = ipc.shm("m", 65536)`)
	fn, err := L.LoadString(`
		local n = ...
		local mem, s = mem
		for _ = 1, n do s = mem:read(0, 65536) end
		return #s`)
	if err != nil {
		t.Fatal(err)
	}
	if err := L.DoString(`mem:write(0, string.rep("q", 65536))`); err != nil {
		t.Fatal(err)
	}
	run := func(n int) {
		L.Push(fn)
		L.Push(lua.LNumber(n))
		if err := L.PCall(1, 1, nil); err != nil {
			t.Fatal(err)
		}
		L.Pop(1)
	}
	run(10)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const n = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	run(n)
	runtime.ReadMemStats(&after)
	if per := float64(after.TotalAlloc-before.TotalAlloc) / n; per > 64 {
		t.Fatalf("%.0f bytes allocated per read of an unchanged 64 KiB block, want none (at most 64)", per)
	}
}
