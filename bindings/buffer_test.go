package bindings

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

// ipc.buffer: what it holds, read back as string.sub and string.byte read
// a string, and the errors, which name the object, the buffer and the line.
func TestBuffer(t *testing.T) {
	L, _ := parentState(t, `ipc = require("ipc"); mem = ipc.shm("m", 16); big = ipc.shm("big", 4096)`)
	err := L.DoString(`
		local b = ipc.buffer(10)
		assert(#b == 0 and b:capacity() == 10 and tostring(b) == "" and b:string() == "")
		assert(select("#", b:byte()) == 0)
		mem:write(0, "0123456789abcdef")
		assert(mem:read(3, 7, {into = b}) == 7)
		local s = "3456789"
		assert(#b == 7 and tostring(b) == s and b:string() == s)
		for _, ij in ipairs({{1}, {2}, {-2}, {0}, {-100}, {8}, {3, 5}, {3, -3}, {-3, -1}, {5, 3}, {2, 100}, {0, 0}, {-100, 2}}) do
			local i, j = ij[1], ij[2]
			assert(b:string(unpack(ij)) == s:sub(unpack(ij)), "string " .. i .. "," .. tostring(j))
			local x, y = {b:byte(unpack(ij))}, {s:byte(unpack(ij))}
			assert(#x == #y, "byte count " .. i .. "," .. tostring(j))
			for k = 1, #x do assert(x[k] == y[k]) end
		end
		-- a buffer is written where a string is
		mem:write(0, b)
		assert(mem:read(0, 16) == "3456789789abcdef")
		-- a read of 0 bytes empties it
		assert(mem:read(0, 0, {into = b}) == 0 and #b == 0)
		-- options without into read a string as before
		assert(mem:read(0, 2, {}) == "34")
	`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ code, want string }{
		{`ipc.buffer(0)`, `<string>:1: buffer at <string>:1: capacity 0 must be between 1 and 1073741824 bytes`},
		{`ipc.buffer(2^31)`, `capacity 2147483648 must be between 1`},
		{`ipc.buffer(1.5)`, `capacity must be an integer, got 1.5`},
		{`local b = ipc.buffer(4)
		  mem:read(0, 5, {into = b})`, `<string>:2: shm "m": read: 5 bytes do not fit into buffer at <string>:1 (capacity 4)`},
		{`mem:read(0, 5, {into = "x"})`, `shm "m": read: into must be an ipc.buffer, got string "x"`},
		{`mem:read(0, 5, {into = mem})`, `shm "m": read: into must be an ipc.buffer, got userdata`},
		{`mem:read(14, 4, {into = ipc.buffer(4)})`, `shm "m": read: bytes 14..18 are outside size 16`},
		{`local b = ipc.buffer(2000); big:read(0, 2000, {into = b}); b:byte(1, -1)`, `buffer at <string>:1: byte: 2000 values are too many`},
		{`mem:write(0, {})`, `string, number or buffer expected, got table`},
		{`ipc.buffer(4):bite()`, `bite: no such method on buffer at <string>:1; did you mean byte?`},
	} {
		err := L.DoString(c.code)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.code, err, c.want)
		}
	}
}

// testStream is a Lua pipe object over a pipe the test writes to from Go.
func testStream(t testing.TB, L *lua.LState, name string) *os.File {
	r, w, err := ipc.NewPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{what: "pipe " + name}
	if s.r, err = s.newStreamEnd("pipe", r); err != nil {
		t.Fatal(err)
	}
	L.SetGlobal(name, newUserData(L, pipeClass, s))
	t.Cleanup(func() { s.close(); w.Close() })
	return w
}

// s:read(n, {into = b}): the count and the bytes, a short read at the end,
// eof, timeout and block = false (the bytes that came stay for the next
// read), small and large reads, mixed with string reads.
func TestStreamReadInto(t *testing.T) {
	L, _ := parentState(t, `ipc = require("ipc")`)
	w := testStream(t, L, "p")
	big := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
	go func() {
		w.Write([]byte("hello"))
		w.Write(big)
		w.Write([]byte("tail"))
	}()
	err := L.DoString(`
		local b = ipc.buffer(131072)
		local o = {into = b}
		assert(p:read(2, o) == 2 and tostring(b) == "he")
		assert(p:read(3) == "llo")
		assert(p:read(131072, o) == 131072 and #b == 131072)
		assert(b:string(1, 16) == "0123456789abcdef" and b:string(-16) == "0123456789abcdef")
		assert(tostring(b) == string.rep("0123456789abcdef", 8192))
		local n, err = p:read(10, {into = b, timeout = 0.05})
		assert(n == nil and err == "timeout" and #b == 0, tostring(err))
	`)
	if err != nil {
		t.Fatal(err)
	}
	// What came before the timeout stays: "tail" is read by the next read.
	err = L.DoString(`
		local b = ipc.buffer(100)
		local n, err = p:read(100, {into = b, block = false})
		assert(n == 4 and tostring(b) == "tail", tostring(n) .. " " .. tostring(err))
		local n, err = p:read(100, {into = b, block = false})
		assert(n == nil and err == "empty" and #b == 0, tostring(err))
	`)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		w.Write(big[:100000])
		w.Close()
	}()
	err = L.DoString(`
		local b = ipc.buffer(131072)
		assert(p:read(131072, {into = b}) == 100000, "fewer at the end")
		assert(b:string(99985) == "0123456789abcdef")
		local n, err = p:read(10, {into = b})
		assert(n == nil and err == "eof" and #b == 0)
		local ok, err = pcall(p.read, p, "a", {into = b})
		assert(not ok and err:find("pipe p: read: into = buffer at <string>:2 takes a byte count, got string \"a\"", 1, true), err)
	`)
	if err != nil {
		t.Fatal(err)
	}
}

// A stream writes a buffer's bytes, as it writes a string's.
func TestStreamWriteBuffer(t *testing.T) {
	L, _ := parentState(t, `ipc = require("ipc"); mem = ipc.shm("m", 8)`)
	r, w, err := ipc.NewPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := &stream{what: "pipe q"}
	if s.w, err = s.newStreamEnd("pipe", w); err != nil {
		t.Fatal(err)
	}
	defer s.close()
	L.SetGlobal("q", newUserData(L, pipeClass, s))
	err = L.DoString(`
		mem:write(0, "abcdefgh")
		local b = ipc.buffer(8)
		mem:read(2, 3, {into = b})
		assert(q:write(b, "-", b, {timeout = 1}) == true)
		assert(q:write(ipc.buffer(3)) == true) -- empty: nothing written
	`)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 16)
	n, _ := r.Read(got)
	if string(got[:n]) != "cde-cde" {
		t.Fatalf("read %q, want %q", got[:n], "cde-cde")
	}
}

// readLoop loads a Lua function that reads n chunks of 64 KiB from p
// (into a buffer unless strings) and returns the bytes read.
func readLoop(t testing.TB, L *lua.LState, strings bool) *lua.LFunction {
	code := `
		local n = ...
		local b = ipc.buffer(65536)
		local o, got = {into = b}, 0
		for _ = 1, n do got = got + p:read(65536, o) end
		return got`
	if strings {
		code = `
		local n = ...
		local got = 0
		for _ = 1, n do got = got + #p:read(65536) end
		return got`
	}
	fn, err := L.LoadString(code)
	if err != nil {
		t.Fatal(err)
	}
	return fn
}

// feed writes 64 KiB chunks to w until it is closed.
func feed(w *os.File) {
	chunk := bytes.Repeat([]byte("x"), 65536)
	for {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// bench64K runs fn's loop b.N times, one op being 64 KiB, allocations
// reported.
func bench64K(b *testing.B, L *lua.LState, fn *lua.LFunction) {
	b.SetBytes(65536)
	b.ReportAllocs()
	b.ResetTimer()
	callN(b, L, fn, b.N)
}

func callN(t testing.TB, L *lua.LState, fn *lua.LFunction, n int) int {
	L.Push(fn)
	L.Push(lua.LNumber(n))
	if err := L.PCall(1, 1, nil); err != nil {
		t.Fatal(err)
	}
	got := int(L.ToNumber(-1))
	L.Pop(1)
	return got
}

// A 64 KiB read into a buffer allocates nothing (a count of bytes, not a
// time): the reader's GC work was most of a bulk reader's CPU.
func TestStreamReadIntoAllocs(t *testing.T) {
	L, _ := parentState(t, `ipc = require("ipc")`)
	w := testStream(t, L, "p")
	go feed(w)
	fn := readLoop(t, L, false)
	callN(t, L, fn, 10)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const n = 1000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if got := callN(t, L, fn, n); got != n*65536 {
		t.Fatalf("read %d bytes, want %d", got, n*65536)
	}
	runtime.ReadMemStats(&after)
	if per := float64(after.TotalAlloc-before.TotalAlloc) / n; per > 256 {
		t.Fatalf("%.0f bytes allocated per 64 KiB read into a buffer, want ~none (at most 256)", per)
	}
}

// go test ./bindings -run - -bench 'ReadInto|ReadString' -benchmem
// (one op = one 64 KiB read; the writer is a goroutine of the same test
// process, so the figures are the reader's allocations, not a rate
// between processes).
func BenchmarkStreamReadInto(b *testing.B)   { benchStreamRead(b, false) }
func BenchmarkStreamReadString(b *testing.B) { benchStreamRead(b, true) }

func benchStreamRead(b *testing.B, strings bool) {
	L, _ := parentState(b, `ipc = require("ipc")`)
	w := testStream(b, L, "p")
	go feed(w)
	fn := readLoop(b, L, strings)
	bench64K(b, L, fn)
}

func BenchmarkShmReadInto(b *testing.B)           { benchShmRead(b, `mem:read(0, 65536, o)`) }
func BenchmarkShmReadStringChanging(b *testing.B) { benchShmRead(b, `mem:read(0, 65536)`) }

func benchShmRead(b *testing.B, read string) {
	L, _ := parentState(b, `ipc = require("ipc"); mem = ipc.shm("m", 65536)`)
	fn, err := L.LoadString(`
		local n = ...
		local o = {into = ipc.buffer(65536)}
		for i = 1, n do
			mem:write(0, i % 2 == 0 and "x" or "y")
			local _ = ` + read + `
		end
		return n`)
	if err != nil {
		b.Fatal(err)
	}
	bench64K(b, L, fn)
}

// go test ./bindings -run - -bench StreamWrite -benchmem: a 64 KiB string
// write allocates nothing (the string's bytes go to write(2) as they are).
func BenchmarkStreamWrite(b *testing.B) {
	L, _ := parentState(b, `ipc = require("ipc")`)
	r, w, err := ipc.NewPipe()
	if err != nil {
		b.Fatal(err)
	}
	s := &stream{what: "pipe q"}
	if s.w, err = s.newStreamEnd("pipe", w); err != nil {
		b.Fatal(err)
	}
	L.SetGlobal("q", newUserData(L, pipeClass, s))
	go func() {
		p := make([]byte, 65536)
		for {
			if _, err := r.Read(p); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { s.close(); r.Close() })
	fn, err := L.LoadString(`
		local n = ...
		local data = string.rep("x", 65536)
		for _ = 1, n do q:write(data) end
		return n`)
	if err != nil {
		b.Fatal(err)
	}
	bench64K(b, L, fn)
}
