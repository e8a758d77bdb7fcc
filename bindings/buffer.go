package bindings

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

const bufferClass = "ipc.buffer"

// maxBufferSize bounds one buffer (1 GiB, as one ipc.shm block).
const maxBufferSize = 1 << 30

// buffer is memory a script owns to read bytes into (ipc.buffer): a read
// with {into = b} (stream:read, mem:read) puts its bytes there instead of
// making a new string, as C's read(2) or memcpy into a buffer does, and
// any call that takes bytes (write, mem:write, q:send) takes a buffer too.
//
// Why: a 64 KiB read returned as a string is a fresh 64 KiB Go allocation
// and a copy, and collecting them was 44–64% of a bulk reader's CPU
// (mallocgc and GC assists); a read into a buffer allocates nothing.
type buffer struct {
	what string // `buffer at x.lua:3`: used in errors
	b    []byte // the bytes held: len is #b, cap the capacity
	// The count the last read into it returned, boxed: a loop of reads of
	// the same size returns the same Lua number, allocating nothing.
	lastN int
	lastV lua.LValue
}

func (b *buffer) String() string { return b.what }

func openBuffer(L *lua.LState, mod *lua.LTable, env *Env) {
	env.registerClassThen(L, bufferClass, func() map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			"string":   bufferString,
			"byte":     bufferByte,
			"capacity": bufferCapacity,
		}
	}, nil, func(mt *lua.LTable) {
		mt.RawSetString("__len", L.NewFunction(func(L *lua.LState) int {
			L.Push(lua.LNumber(len(checkBuffer(L, 1).b)))
			return 1
		}))
		// tostring(b) is its bytes, as LuaJIT's string buffers; the
		// buffer's name is what errors use.
		mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
			L.Push(lua.LString(checkBuffer(L, 1).b))
			return 1
		}))
	})
	env.setFunc(L, mod, "buffer", luaBuffer)
}

// ipc.buffer(capacity) -> b
// An empty buffer with room for capacity bytes, this process's own (not
// shared: it is plain memory of the Lua state that made it).
func luaBuffer(L *lua.LState) int {
	what := "buffer at " + scriptLine(L)
	n := checkInt(L, 1, "capacity")
	if n < 1 || n > maxBufferSize {
		L.RaiseError("%s: capacity %d must be between 1 and %d bytes", what, n, maxBufferSize)
	}
	L.Push(newUserData(L, bufferClass, &buffer{what: what, b: make([]byte, 0, n)}))
	return 1
}

// scriptLine is where(L), past Go functions between (pcall(ipc.buffer, n)
// names the line of the pcall, not "[G]").
func scriptLine(L *lua.LState) string {
	for level := 1; level < 8; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			break
		}
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err == nil && dbg.CurrentLine > 0 {
			return fmt.Sprintf("%s:%d", dbg.Source, dbg.CurrentLine)
		}
	}
	return where(L)
}

func checkBuffer(L *lua.LState, n int) *buffer {
	return checkClass[*buffer](L, n, "buffer")
}

// intoBuffer returns the buffer a read's options name as into (nil: none);
// obj and op name the read in the error for anything else.
func intoBuffer(L *lua.LState, opts *lua.LTable, obj, op string) *buffer {
	if opts == nil {
		return nil
	}
	switch v := opts.RawGetString("into").(type) {
	case *lua.LNilType:
		return nil
	case *lua.LUserData:
		if b, ok := v.Value.(*buffer); ok {
			return b
		}
	}
	L.RaiseError("%s: %s: into must be an ipc.buffer, got %s", obj, op, gotValue(opts.RawGetString("into")))
	return nil
}

// room returns the buffer's memory for a read of n bytes, raising (as obj,
// the object read, op) when n is negative or more than its capacity.
func (b *buffer) room(L *lua.LState, n int, obj, op string) []byte {
	if n < 0 {
		L.RaiseError("%s: %s: byte count %d is negative", obj, op, n)
	}
	if n > cap(b.b) {
		L.RaiseError("%s: %s: %d bytes do not fit into %s (capacity %d)", obj, op, n, b.what, cap(b.b))
	}
	return b.b[:n]
}

// filled records that the buffer now holds its first n bytes and returns
// n as a Lua number.
func (b *buffer) filled(n int) lua.LValue {
	b.b = b.b[:n]
	if b.lastV == nil || b.lastN != n {
		b.lastN, b.lastV = n, lua.LNumber(n)
	}
	return b.lastV
}

// span resolves string.sub-style indices i..j (1-based, negative from the
// end) into the buffer's bytes [lo, hi); lo >= hi when empty.
func (b *buffer) span(i, j int) (lo, hi int) {
	n := len(b.b)
	if i < 0 {
		i = max(n+i+1, 1)
	} else if i == 0 {
		i = 1
	}
	if j < 0 {
		j = n + j + 1
	} else if j > n {
		j = n
	}
	return i - 1, j
}

// b:string([i [, j]]) -> the bytes i..j as a new string (as string.sub;
// all of them by default)
func bufferString(L *lua.LState) int {
	b := checkBuffer(L, 1)
	lo, hi := b.span(optIntArg(L, 2, "start", 1), optIntArg(L, 3, "end", -1))
	if lo >= hi {
		L.Push(lua.LString(""))
		return 1
	}
	L.Push(lua.LString(b.b[lo:hi]))
	return 1
}

// b:byte([i [, j]]) -> the bytes i..j as numbers (as string.byte; the
// first by default)
func bufferByte(L *lua.LState) int {
	b := checkBuffer(L, 1)
	i := optIntArg(L, 2, "start", 1)
	lo, hi := b.span(i, optIntArg(L, 3, "end", i))
	if lo >= hi {
		return 0
	}
	if hi-lo > maxByteValues {
		L.RaiseError("%s: byte: %d values are too many to return at once (at most %d)", b.what, hi-lo, maxByteValues)
	}
	for _, c := range b.b[lo:hi] {
		L.Push(lua.LNumber(c))
	}
	return hi - lo
}

// maxByteValues bounds what one b:byte returns: each value is a slot of
// the Lua stack, which the supervisor's state does not grow past 5120.
const maxByteValues = 1024

// b:capacity() -> the most bytes it can hold
func bufferCapacity(L *lua.LState) int {
	L.Push(lua.LNumber(cap(checkBuffer(L, 1).b)))
	return 1
}

// bufferBytes is the bytes a buffer holds, for a call that takes bytes.
func bufferBytes(v lua.LValue) ([]byte, bool) {
	if ud, ok := v.(*lua.LUserData); ok {
		if b, ok := ud.Value.(*buffer); ok {
			return b.b, true
		}
	}
	return nil, false
}
