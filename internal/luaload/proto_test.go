package luaload

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
	lua "github.com/yuin/gopher-lua"
)

// repoScripts is every Lua script of the repository that compiles: the
// .lua files under scripts/, exercises/ and tests/testdata, and the .lua
// files inside tests/testdata's txtar archives.
func repoScripts(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, dir := range []string{"scripts", "exercises", "tests/testdata"} {
		root := filepath.Join("..", "..", dir)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			switch {
			case strings.HasSuffix(path, ".lua"):
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				out[path] = b
			case strings.HasSuffix(path, ".txtar"):
				a, err := txtar.ParseFile(path)
				if err != nil {
					return err
				}
				for _, f := range a.Files {
					if strings.HasSuffix(f.Name, ".lua") {
						out[path+"/"+f.Name] = f.Data
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestProtoCodecOK(t *testing.T) {
	if !ProtoCodecOK() {
		t.Fatal("FunctionProto.stringConstants []string not found: children compile the script again (see proto.go)")
	}
}

// Every script the repository holds decodes to the prototype the
// compiler made, field by field, unexported stringConstants included.
func TestProtoRoundTrip(t *testing.T) {
	scripts := repoScripts(t)
	compiled := 0
	for name, src := range scripts {
		p, err := Compile(bytes.NewReader(src), name)
		if err != nil {
			continue // a test's script that must not compile
		}
		compiled++
		enc, err := EncodeProto(nil, p)
		if err != nil {
			t.Fatalf("%s: encode: %v", name, err)
		}
		q, err := DecodeProto(enc)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if diff := protoDiff(p, q, "main"); diff != "" {
			t.Fatalf("%s: the decoded prototype differs from the compiled one: %s", name, diff)
		}
		if len(*stringConstants(q)) != len(q.Constants) {
			t.Fatalf("%s: %d string constants for %d constants", name, len(*stringConstants(q)), len(q.Constants))
		}
	}
	if compiled < 100 {
		t.Fatalf("only %d of %d scripts compiled: the walk did not find the repository's scripts", compiled, len(scripts))
	}
	t.Logf("%d scripts compiled, %d found", compiled, len(scripts))
}

// protoDiff compares two prototypes field by field: every field of
// FunctionProto (a field gopher-lua adds fails here until the codec
// carries it), number constants by their bits (a folded 0/0 is a NaN).
func protoDiff(a, b *lua.FunctionProto, at string) string {
	if n := reflect.TypeFor[lua.FunctionProto]().NumField(); n != 15 {
		return fmt.Sprintf("FunctionProto has %d fields, the codec knows 15", n)
	}
	if len(a.Constants) != len(b.Constants) {
		return at + ": Constants"
	}
	for i, c := range a.Constants {
		d := b.Constants[i]
		an, aok := c.(lua.LNumber)
		bn, bok := d.(lua.LNumber)
		if aok != bok || aok && math.Float64bits(float64(an)) != math.Float64bits(float64(bn)) || !aok && c != d {
			return fmt.Sprintf("%s: Constants[%d] %v != %v", at, i, c, d)
		}
	}
	if !reflect.DeepEqual(*stringConstants(a), *stringConstants(b)) {
		return at + ": stringConstants"
	}
	if len(a.FunctionPrototypes) != len(b.FunctionPrototypes) {
		return at + ": FunctionPrototypes"
	}
	for i := range a.FunctionPrototypes {
		if d := protoDiff(a.FunctionPrototypes[i], b.FunctionPrototypes[i], fmt.Sprintf("%s.%d", at, i)); d != "" {
			return d
		}
	}
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := range va.NumField() {
		f := va.Type().Field(i)
		switch f.Name {
		case "Constants", "FunctionPrototypes", "stringConstants":
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			return at + ": " + f.Name
		}
	}
	return ""
}

const codecScript = `
local t = {x = 1.5, ["k y"] = "v"}
function f(a, ...)
  local b, c = a, {...}
  return function() return b + #c + t.x, "s" .. tostring(b) end
end
x, y = 1, 2
x, y = y, x
R = select(1, f(3, 4, 5)()) + x * 10
error("at line 10")
`

// codecChunk is codecScript compiled, and its encoding.
func codecChunk(tb testing.TB) (*lua.FunctionProto, []byte) {
	tb.Helper()
	p, err := Compile(strings.NewReader(codecScript), "codec.lua")
	if err != nil {
		tb.Fatal(err)
	}
	enc, err := EncodeProto(nil, p)
	if err != nil {
		tb.Fatal(err)
	}
	return p, enc
}

// A decoded chunk runs as the compiled one: the same results, the same
// error with the same line.
func TestProtoRuns(t *testing.T) {
	p, enc := codecChunk(t)
	q, err := DecodeProto(enc)
	if err != nil {
		t.Fatal(err)
	}
	run := func(p *lua.FunctionProto) (string, string) {
		L := lua.NewState()
		defer L.Close()
		L.Push(L.NewFunctionFromProto(p))
		err := L.PCall(0, 0, nil)
		if err == nil {
			t.Fatal("no error")
		}
		return L.GetGlobal("R").String(), err.Error()
	}
	r1, e1 := run(p)
	r2, e2 := run(q)
	// f(3, 4, 5)() is 3 + 2 + 1.5; x is 2 after the swap.
	if r1 != "26.5" || r2 != r1 {
		t.Fatalf("R = %s compiled, %s decoded; want 26.5", r1, r2)
	}
	if !strings.Contains(e1, "codec.lua:10: at line 10") || e2 != e1 {
		t.Fatalf("errors:\n%s\n%s", e1, e2)
	}
}

// A truncated or corrupted encoding is refused with an error, never a
// panic and never a different prototype.
func TestProtoCorruptRefused(t *testing.T) {
	_, enc := codecChunk(t)
	for n := 0; n < len(enc); n++ {
		if _, err := DecodeProto(enc[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: accepted", n, len(enc))
		}
	}
	bad := make([]byte, len(enc))
	for i := range enc {
		for _, bit := range []byte{1, 0x80} {
			copy(bad, enc)
			bad[i] ^= bit
			if _, err := DecodeProto(bad); err == nil {
				t.Fatalf("byte %d ^ %#x: accepted", i, bit)
			}
		}
	}
	if _, err := DecodeProto(append(enc[:len(enc):len(enc)], 0)); err == nil {
		t.Fatal("a byte appended: accepted")
	}
}

// The decoder's structural checks alone (the checksum fixed up after
// each corruption) still refuse without a panic.
func FuzzDecodeProto(f *testing.F) {
	_, enc := codecChunk(f)
	f.Add(enc[:len(enc)-8])
	f.Add([]byte{protoVersion})
	f.Fuzz(func(t *testing.T, body []byte) {
		data := append(body[:len(body):len(body)], make([]byte, 8)...)
		sum := protoSum(body)
		for i := range 8 {
			data[len(body)+i] = byte(sum >> (8 * i))
		}
		q, err := DecodeProto(data)
		if err != nil {
			return
		}
		// Accepted: it encodes, and that decodes to the same prototype
		// (not always the same bytes: a varint may be written longer
		// than it needs).
		again, err := EncodeProto(nil, q)
		if err != nil {
			t.Fatalf("accepted a chunk that does not encode: %v", err)
		}
		r, err := DecodeProto(again)
		if err != nil {
			t.Fatalf("accepted a chunk whose encoding does not decode: %v", err)
		}
		if diff := protoDiff(q, r, "main"); diff != "" {
			t.Fatalf("accepted a chunk that does not survive a round trip: %s", diff)
		}
	})
}

// The decoder's varints are binary.Uvarint's and binary.Varint's: the
// same values, the same bytes read, the same refusals.
func TestProtoVarints(t *testing.T) {
	cases := [][]byte{{}, {0}, {1}, {0x7f}, {0x80}, {0x80, 1}, {0xff, 0x7f}, {0x80, 0x80, 0x80}}
	for _, v := range []uint64{127, 128, 300, 1 << 20, 1<<32 - 1, 1 << 35, 1<<63 - 1, 1 << 63, ^uint64(0)} {
		cases = append(cases, binary.AppendUvarint(nil, v))
	}
	for _, v := range []int64{-1, -64, -65, 1 << 40, -(1 << 40), math.MaxInt64, math.MinInt64} {
		cases = append(cases, binary.AppendVarint(nil, v))
	}
	cases = append(cases, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	for _, c := range cases {
		data := append(c[:len(c):len(c)], 9) // a byte after it
		d := &protoDecoder{data: data}
		got := d.uvarint()
		want, n := binary.Uvarint(data)
		if (d.err == nil) != (n > 0) || (n > 0 && (got != want || d.off != n)) {
			t.Errorf("uvarint % x: %d, off %d, err %v; binary.Uvarint: %d, %d", data, got, d.off, d.err, want, n)
		}
		d = &protoDecoder{data: data}
		goti := d.int()
		wanti, n := binary.Varint(data)
		if (d.err == nil) != (n > 0) || (n > 0 && (int64(goti) != wanti || d.off != n)) {
			t.Errorf("int % x: %d, off %d, err %v; binary.Varint: %d, %d", data, goti, d.off, d.err, wanti, n)
		}
	}
}

// A string constant boxed in place is the LValue lua.LString makes: equal,
// the same type, the same string, a map key for the same entry.
func TestBoxString(t *testing.T) {
	strs := []lua.LString{"alpha", "", "gamma"}
	m := map[lua.LValue]int{}
	for i := range strs {
		v := boxString(&strs[i])
		want := lua.LValue(lua.LString(string(strs[i])))
		if v != want || v.Type() != lua.LTString || v.String() != string(strs[i]) {
			t.Errorf("boxString(%q) = %v (%v), want %v", strs[i], v, v.Type(), want)
		}
		if s, ok := v.(lua.LString); !ok || s != strs[i] {
			t.Errorf("boxString(%q) as LString: %q, %v", strs[i], s, ok)
		}
		m[v] = i
	}
	for i := range strs {
		if j, ok := m[lua.LString(string(strs[i]))]; !ok || j != i {
			t.Errorf("map[%q] = %d, %v", strs[i], j, ok)
		}
	}
}
