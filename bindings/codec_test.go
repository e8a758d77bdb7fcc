package bindings

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

// luaValue evaluates a Lua expression.
func luaValue(t testing.TB, L *lua.LState, expr string) lua.LValue {
	t.Helper()
	if err := L.DoString("return " + expr); err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	v := L.Get(-1)
	L.Pop(1)
	return v
}

// sameValue compares two Lua values deeply (NaN equals NaN, -0 differs
// from 0: a body must survive bit for bit).
func sameValue(a, b lua.LValue) bool {
	switch a := a.(type) {
	case lua.LNumber:
		b, ok := b.(lua.LNumber)
		return ok && (math.Float64bits(float64(a)) == math.Float64bits(float64(b)) || (a != a && b != b))
	case *lua.LTable:
		b, ok := b.(*lua.LTable)
		if !ok {
			return false
		}
		n := 0
		same := true
		a.ForEach(func(k, v lua.LValue) {
			n++
			if !sameValue(v, b.RawGet(k)) {
				same = false
			}
		})
		b.ForEach(func(lua.LValue, lua.LValue) { n-- })
		return same && n == 0
	}
	return a == b
}

func roundTrip(t *testing.T, L *lua.LState, v lua.LValue) ([]byte, lua.LValue) {
	t.Helper()
	enc, dec := newBodyEncoder(), newBodyDecoder()
	b, err := enc.encode(v, 0)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	wire := append([]byte(nil), b...)
	got, err := dec.decode(L, wire)
	if err != nil {
		t.Fatalf("decode % x: %v", wire, err)
	}
	return wire, got
}

func TestCodecRoundTrip(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	L.SetGlobal("binary", lua.LString(binary))
	for _, expr := range []string{
		"nil", "true", "false",
		"0", "1", "-1", "-42", "127", "128", "-32", "-33", "255", "256", "65535", "65536",
		"2^31", "-2^31", "2^32", "2^53", "-2^53", "2^62", "-2^63", "2^63", "2^64",
		"3.25", "-3.25", "0.1", "1e300", "-1e-300", "1/0", "-1/0", "0/0", "-(0.0)",
		`""`, `"hello"`, `"héllo wörld ✓"`, "binary", `"\0\1\2"`, `"\255\254"`, `string.rep("x", 100 * 1024)`,
		`string.rep(binary, 400)`,
		"{}", "{1, 2, 3}", "{1, 'two', true, 4.5, {}}", "{a = 1, b = 'two'}", "{1, 2, x = 3}",
		"{1, nil, 3}", "{[2] = 'b', [3] = 'c'}", "{[0] = 'zero', [-1] = 'minus'}", "{[1.5] = 'x', [2^40] = 'big'}",
		"{[true] = 'yes', [false] = 'no'}", `{["with space"] = 1, ["\0"] = 2, [binary] = 3}`,
		"{a = {b = {c = {1, 2, 3, {d = 'deep'}}}}}",
		"{config = {name = 'w', retries = 3, ratio = 0.5, tags = {'a', 'b'}, env = {}}}",
	} {
		t.Run(expr, func(t *testing.T) {
			v := luaValue(t, L, expr)
			_, got := roundTrip(t, L, v)
			if !sameValue(v, got) {
				t.Errorf("%s: got %v back", expr, got)
			}
		})
	}
}

func TestCodecTableKey(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	_, got := roundTrip(t, L, luaValue(t, L, "{[{1, 2}] = 'table key'}"))
	k, v := got.(*lua.LTable).Next(lua.LNil)
	if !sameValue(k, luaValue(t, L, "{1, 2}")) || v != lua.LString("table key") {
		t.Errorf("got %v = %v", k, v)
	}
}

func TestCodecNesting(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	deep := luaValue(t, L, "(function() local t = 'leaf' for i = 1, 199 do t = {t} end return t end)()")
	if _, got := roundTrip(t, L, deep); !sameValue(deep, got) {
		t.Errorf("199 levels did not survive")
	}
	tooDeep := luaValue(t, L, "(function() local t = 'leaf' for i = 1, 201 do t = {t} end return t end)()")
	if _, err := newBodyEncoder().encode(tooDeep, 0); err == nil || !strings.Contains(err.Error(), "nested more than 200 deep") {
		t.Errorf("201 levels: err = %v", err)
	}
	// A table shared twice is no cycle.
	shared := luaValue(t, L, "(function() local s = {1} return {a = s, b = s, c = {s}} end)()")
	if _, got := roundTrip(t, L, shared); !sameValue(shared, got) {
		t.Errorf("shared table did not survive")
	}
}

// The wire format is MessagePack as documented in codec.go: check the bytes
// that other languages will read.
func TestCodecWireFormat(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("bin", lua.LString([]byte{0xff, 0x00}))
	for _, c := range []struct {
		expr string
		want []byte
	}{
		{"nil", []byte{0xc0}},
		{"true", []byte{0xc3}},
		{"-42", []byte{0xd0, 0xd6}},
		{"42", []byte{0x2a}},
		{"2^53", []byte{0xcf, 0, 0x20, 0, 0, 0, 0, 0, 0}},
		{"-2^63", []byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		{"3.25", []byte{0xcb, 0x40, 0x0a, 0, 0, 0, 0, 0, 0}},
		{"-(0.0)", []byte{0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		{"2^63", []byte{0xcb, 0x43, 0xe0, 0, 0, 0, 0, 0, 0}},
		{`"abc"`, []byte{0xa3, 'a', 'b', 'c'}},
		{"bin", []byte{0xc4, 2, 0xff, 0x00}},
		{"{}", []byte{0x90}},
		{"{1, 2}", []byte{0x92, 1, 2}},
		{"{a = 1}", []byte{0x81, 0xa1, 'a', 1}},
		{"{1, nil, 3}", []byte{0x93, 1, 0xc0, 3}},   // an array with a hole, not a map
		{"{[3] = 'c'}", []byte{0x81, 3, 0xa1, 'c'}}, // too sparse for an array
	} {
		got, err := newBodyEncoder().encode(luaValue(t, L, c.expr), 0)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: got % x, %v; want % x", c.expr, got, err, c.want)
		}
	}
	// And another MessagePack implementation reads it.
	b, _ := newBodyEncoder().encode(luaValue(t, L, "{name = 'w', n = 2^53, list = {1, 2.5, 'x'}, raw = bin}"), 0)
	var v map[string]any
	if err := msgpack.Unmarshal(b, &v); err != nil {
		t.Fatalf("msgpack.Unmarshal: %v", err)
	}
	if v["name"] != "w" || v["n"] != uint64(1<<53) || len(v["list"].([]any)) != 3 || !bytes.Equal(v["raw"].([]byte), []byte{0xff, 0}) {
		t.Errorf("msgpack.Unmarshal read %#v", v)
	}
}

func TestCodecRefusals(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("ud", newUserDataFor(L, &mailbox{what: `mailbox "jobs"`}))
	L.SetGlobal("plain", L.NewUserData())
	for _, c := range []struct{ expr, want string }{
		{"{config = {callback = print}}", "body.config.callback: a function cannot be sent"},
		{"function() end", "body: a function cannot be sent"},
		{"{1, 2, coroutine.create(function() end)}", "body[3]: a coroutine cannot be sent"},
		{"{ch = channel.make()}", "body.ch: a channel cannot be sent"},
		{"{box = ud}", `body.box: mailbox "jobs" (an object: processes share it by declaring it, not by sending it) cannot be sent`},
		{"{[\"odd key\"] = plain}", `body["odd key"]: a userdata cannot be sent`},
		{"{[print] = 1}", "body[<function>]: a table key: a function cannot be sent"},
		{"(function() local t = {} t.self = t return t end)()", "body.self: a table that contains itself (a cycle) cannot be sent"},
		{"(function() local t = {x = {}} t.x[1] = {t} return t end)()", "body.x[1][1]: a table that contains itself (a cycle) cannot be sent"},
	} {
		_, err := newBodyEncoder().encode(luaValue(t, L, c.expr), 0)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s:\n got %v\nwant %s", c.expr, err, c.want)
		}
	}
}

func newUserDataFor(L *lua.LState, v any) *lua.LUserData {
	ud := L.NewUserData()
	ud.Value = v
	return ud
}

func TestCodecSizeLimit(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	enc := newBodyEncoder()
	// Exactly at the limit: header of a str32 is 5 bytes, the type 4.
	fits := lua.LString(strings.Repeat("x", ipc.MaxMessageSize-5-4))
	if b, err := enc.encode(fits, 4); err != nil || len(b) != ipc.MaxMessageSize-4 {
		t.Fatalf("a body that fits: %d bytes, %v", len(b), err)
	}
	big := lua.LString(strings.Repeat("x", ipc.MaxMessageSize-5-4+1))
	_, err := enc.encode(big, 4)
	if !errors.Is(err, ipc.ErrTooLarge) || !strings.Contains(err.Error(), "message of 8.0 MiB (8388609 bytes) exceeds the 8 MiB limit") {
		t.Fatalf("one byte over: %v", err)
	}
	// Split over a table: still measured exactly, never held.
	tbl := L.NewTable()
	for range 3 {
		tbl.Append(lua.LString(strings.Repeat("y", 3<<20)))
	}
	_, err = enc.encode(tbl, 0)
	if !errors.Is(err, ipc.ErrTooLarge) || !strings.Contains(err.Error(), "(9437200 bytes)") {
		t.Fatalf("table over the limit: %v", err)
	}
	if cap(enc.buf) > ipc.MaxMessageSize {
		t.Errorf("the encoder kept %d bytes", cap(enc.buf))
	}
	// The encoder works again afterwards.
	if b, err := enc.encode(lua.LString("ok"), 0); err != nil || string(b) != "\xa2ok" {
		t.Errorf("after a refusal: % x %v", b, err)
	}
}

func TestCodecDecodeErrors(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	dec := newBodyDecoder()
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated str", []byte{0xa5, 'a'}, "string of 5 bytes, only 1 left"},
		{"huge str32", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, "only 1 left"},
		{"huge array32", []byte{0xdd, 0x7f, 0xff, 0xff, 0xff}, "array of 2147483647 elements"},
		{"huge map32", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 1, 1}, "map of 4294967295 entries"},
		{"truncated int", []byte{0xd2, 0}, "truncated"},
		{"nil key", []byte{0x81, 0xc0, 1}, "a map key is nil"},
		{"NaN key", []byte{0x81, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 1}, "a map key is NaN"},
		{"extension", []byte{0xd4, 1, 2}, "MessagePack extension type 1 is not supported (only the timestamp, type -1, is)"},
		{"ext8 truncated", []byte{0xc7, 9, 5, 1}, "extension of 9 bytes, only 1 left"},
		{"timestamp of 3 bytes", []byte{0xc7, 3, 0xff, 1, 2, 3}, "a timestamp of 3 bytes"},
		{"reserved", []byte{0xc1}, "code 0xc1 is reserved"},
		{"trailing", []byte{0xc0, 0xc0}, "1 bytes after the value"},
		{"too deep", bytes.Repeat([]byte{0x91}, 300), "nested more than 200 deep"},
		{"sparse key", []byte{0x81, 0xd2, 0x03, 0xe8, 0, 0, 1}, "integer key 65536000: the body's integer keys leave more than 1048576 empty slots"},
	} {
		_, err := dec.decode(L, c.data)
		if err == nil || !errors.Is(err, errBody) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if v, err := dec.decode(L, nil); err != nil || v != lua.LNil {
		t.Errorf("empty body: %v %v", v, err)
	}
}

// FuzzCodec: decoding arbitrary bytes never panics and never recurses or
// allocates without bound; whatever decodes re-encodes, and that encoding
// is a fixed point (decoding and encoding it again gives the same bytes).
func FuzzCodec(f *testing.F) {
	L := lua.NewState()
	defer L.Close()
	enc := newBodyEncoder()
	for _, expr := range []string{"nil", "{1, 2.5, 'x', {a = true}}", "{[true] = {}, [-1] = 2^53}"} {
		b, _ := enc.encode(luaValue(f, L, expr), 0)
		f.Add(append([]byte(nil), b...))
	}
	dec := newBodyDecoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := dec.decode(L, data)
		if err != nil {
			if !errors.Is(err, errBody) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		b, err := enc.encode(v, 0)
		if err != nil {
			t.Fatalf("decoded %x to a value that does not encode: %v", data, err)
		}
		b = append([]byte(nil), b...)
		again, err := dec.decode(L, b)
		if err != nil {
			t.Fatalf("%x: re-encoded as %x, which does not decode: %v", data, b, err)
		}
		if b2, _ := enc.encode(again, 0); !bytes.Equal(b, b2) {
			t.Fatalf("%x: re-encoded as %x, then as %x", data, b, b2)
		}
	})
}

// The send path reuses its buffer: encoding allocates nothing.
func TestCodecEncodeAllocs(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	enc := newBodyEncoder()
	for _, expr := range []string{`string.rep("x", 64)`, "{1, 2.5, 'three', {a = true, b = {}}}", "{name = 'job', id = 7, tags = {'x', 'y'}}"} {
		v := luaValue(t, L, expr)
		if n := testing.AllocsPerRun(100, func() { enc.encode(v, 0) }); n != 0 {
			t.Errorf("%s: %v allocations per encode", expr, n)
		}
	}
}

// The short-string fast path of decode returns what the general decoder
// does, and leaves every other body (wrong lengths, trailing bytes) to it.
func TestCodecShortStringFastPath(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	general := newBodyDecoder()
	generalDecode := func(body []byte) (lua.LValue, error) {
		d := general
		d.body, d.sparse, d.budget = body, maxSparseSlots, decodeBudget(len(body))
		d.r.Reset(body)
		d.dec.ResetReader(&d.r)
		v, err := d.value(L, 0)
		if err == nil && d.r.Len() != 0 {
			err = errors.New("trailing")
		}
		return v, err
	}
	var bodies [][]byte
	for _, n := range []int{0, 1, 31, 32, 64, 255} {
		s := strings.Repeat("x", n)
		bodies = append(bodies,
			append([]byte{0xa0 | byte(n&0x1f)}, s...),
			append([]byte{0xd9, byte(n)}, s...),
			append([]byte{0xc4, byte(n)}, s...),
			append([]byte{0xd9, byte(n + 1)}, s...),
			append(append([]byte{0xd9, byte(n)}, s...), 0xc0),
			append([]byte{0xa1}, s...),
		)
	}
	bodies = append(bodies, []byte{0xd9}, []byte{0xc4}, []byte{0xa0}, []byte{0xa5, 'a'})
	dec := newBodyDecoder()
	for _, b := range bodies {
		want, werr := generalDecode(b)
		got, err := dec.decode(L, b)
		if (werr == nil) != (err == nil) || (err == nil && !sameValue(got, want)) {
			t.Errorf("%x: decode %v %v, general decoder %v %v", b, got, err, want, werr)
		}
		if _, fast := shortString(b); fast && werr != nil {
			t.Errorf("%x: fast path taken for a body the general decoder refuses: %v", b, werr)
		}
	}
}

// The timestamp extension (type -1) in its three sizes becomes seconds.
func TestCodecTimestamp(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	dec := newBodyDecoder()
	for _, c := range []struct {
		name string
		data []byte
		want float64
	}{
		{"timestamp 32", []byte{0xd6, 0xff, 0x65, 0x53, 0xf1, 0x00}, 1700000000},
		// 64: nanoseconds 500000000 << 34 | seconds 1700000000
		{"timestamp 64", binaryBE(0xd7, 0xff, uint64(500000000)<<34|1700000000), 1700000000.5},
		// 96: nanoseconds 500000000, seconds -2
		{"timestamp 96", []byte{0xc7, 12, 0xff, 0x1d, 0xcd, 0x65, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, -1.5},
		{"in an array", []byte{0x92, 0xd6, 0xff, 0, 0, 0, 7, 0x01}, 7},
	} {
		v, err := dec.decode(L, c.data)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if tb, ok := v.(*lua.LTable); ok {
			v = tb.RawGetInt(1)
		}
		if n, ok := v.(lua.LNumber); !ok || float64(n) != c.want {
			t.Errorf("%s: %v, want %v", c.name, v, c.want)
		}
	}
}

func binaryBE(code, typ byte, v uint64) []byte {
	b := []byte{code, typ, 0, 0, 0, 0, 0, 0, 0, 0}
	for i := 0; i < 8; i++ {
		b[2+i] = byte(v >> (56 - 8*i))
	}
	return b
}

// A table with integer keys 1..n, at least half of them present, goes as an
// array with nil in the holes (Python's msgpack refuses integer map keys by
// default) and comes back the same; sparser ones, and any other key, make
// a map.
func TestCodecArrayWithHoles(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	for _, c := range []struct {
		expr string
		want []byte // nil: a map
	}{
		{"{1, nil, 3}", []byte{0x93, 0x01, 0xc0, 0x03}},
		{"{[2] = 'b'}", []byte{0x92, 0xc0, 0xa1, 'b'}},
		{"(function() local t = {1, 2, 3, 4} t[2] = nil t[3] = nil return t end)()", []byte{0x94, 0x01, 0xc0, 0xc0, 0x04}},
		{"{[3] = 'c'}", nil},        // 1 of 3
		{"{1, nil, 3, x = 1}", nil}, // a string key
		{"{[1] = 1, [2.5] = 2}", nil},
	} {
		v := luaValue(t, L, c.expr)
		wire, got := roundTrip(t, L, v)
		if !sameValue(v, got) {
			t.Errorf("%s: got %v back", c.expr, got)
		}
		if c.want == nil {
			if wire[0]&0xf0 != 0x80 {
				t.Errorf("%s: % x, want a map", c.expr, wire)
			}
		} else if !bytes.Equal(wire, c.want) {
			t.Errorf("%s: % x, want % x", c.expr, wire, c.want)
		}
	}
}

// A string body is encoded without the generic encoder (encodeString):
// the same bytes msgpack writes, str or bin by UTF-8 validity, at each
// length form; a repeat of the very same string returns the encoding kept,
// and anything encoded in between makes it encode again.
func TestCodecStringFastPath(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		for _, valid := range []bool{true, false} {
			s := strings.Repeat("é", n/2) + strings.Repeat("x", n%2)
			if !valid {
				if n == 0 {
					continue
				}
				s = "\xff" + s[1:]
			}
			var want bytes.Buffer
			enc := msgpack.NewEncoder(&want)
			if valid {
				enc.EncodeString(s)
			} else {
				enc.EncodeBytes([]byte(s))
			}
			e := newBodyEncoder()
			got, err := e.encode(lua.LString(s), 0)
			if err != nil || !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("%d bytes (valid UTF-8 %v): %x..., %v; want %x...", n, valid, got[:min(len(got), 4)], err, want.Bytes()[:min(want.Len(), 4)])
			}
			if again, _ := e.encode(lua.LString(s), 0); !bytes.Equal(again, want.Bytes()) {
				t.Fatalf("%d bytes: the repeat differs", n)
			}
		}
	}
	e := newBodyEncoder()
	s := lua.LString("the same string")
	e.encode(s, 0)
	e.encode(lua.LNumber(7), 0)
	if got, _ := e.encode(s, 0); string(got) != "\xafthe same string" {
		t.Fatalf("after another body: %q", got)
	}
	big := lua.LString(strings.Repeat("x", ipc.MaxMessageSize-5))
	if _, err := e.encode(big, 0); err != nil {
		t.Fatalf("a body that fits: %v", err)
	}
	if _, err := e.encode(big, 1); !errors.Is(err, ipc.ErrTooLarge) {
		t.Fatalf("the same body with a type that makes it too large: %v", err)
	}
	if _, err := e.encode(big+"x", 0); !errors.Is(err, ipc.ErrTooLarge) {
		t.Fatalf("a body too large: %v", err)
	}
}
