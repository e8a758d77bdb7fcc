// Package luatable sizes a gopher-lua table for the string keys it is
// about to get, which the library's API cannot: CreateTable(0, n) sizes
// the table's map of string keys, but not the two structures every new
// key is also added to (the keys in insertion order, for next and pairs,
// and a map from key to place in that order). Those start empty and grow
// by doubling, each growth a new allocation and, for the map, a rehash
// of every key: a child's start (its globals, package, the ipc module)
// grew them 30 times.
//
// It writes gopher-lua's unexported fields through a copy of the table's
// layout (v1.1.2, the version go.mod pins): the compile-time checks below
// and TestLayout fail if another version changes it.
package luatable

import (
	"reflect"
	"strings"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// Fields is lua.LTable's layout, its fields exported (the same names
// otherwise): Of gives a table's, where LayoutMatches.
type Fields struct {
	Metatable lua.LValue
	Array     []lua.LValue
	Dict      map[lua.LValue]lua.LValue
	Strdict   map[string]lua.LValue
	Keys      []lua.LValue
	K2i       map[lua.LValue]int
}

// Both sizes equal, or one of these arrays has a negative length.
var (
	_ [unsafe.Sizeof(lua.LTable{}) - unsafe.Sizeof(Fields{})]byte
	_ [unsafe.Sizeof(Fields{}) - unsafe.Sizeof(lua.LTable{})]byte
)

// Of is t's fields. Use it only where LayoutMatches.
func Of(t *lua.LTable) *Fields { return (*Fields)(unsafe.Pointer(t)) }

// LayoutMatches reports whether lua.LTable is laid out as Fields: the
// same field names (but for the case of the first letter), types and
// offsets. Where it does not (another gopher-lua), this package does
// nothing and its callers take gopher-lua's API.
var LayoutMatches = layoutMatches()

func layoutMatches() bool {
	got, want := reflect.TypeFor[lua.LTable](), reflect.TypeFor[Fields]()
	if got.Size() != want.Size() || got.NumField() != want.NumField() {
		return false
	}
	for i := range got.NumField() {
		g, w := got.Field(i), want.Field(i)
		if !strings.EqualFold(g.Name, w.Name) || g.Type != w.Type || g.Offset != w.Offset {
			return false
		}
	}
	return true
}

// New is L.CreateTable(0, n), with room for n string keys in all of its
// structures.
func New(n int) *lua.LTable {
	t := &lua.LTable{Metatable: lua.LNil}
	Presize(t, n)
	return t
}

// Presize gives t room for n string keys, in the structures that have
// none yet (a table that holds no string key has none).
func Presize(t *lua.LTable, n int) {
	if n <= 0 {
		return
	}
	Expect(t, nil, n)
}

// Expect readies t, a table that has no string key yet, for the string
// keys keys, in this order, and more other keys. A key of keys costs
// nothing when it is set: it is in t's key order already, where
// RawSetString would add it, with two allocations (gopher-lua boxes the
// key twice), and the next key sees it. An expected key is invisible to
// next and pairs until it is set, and then appears in its place in keys,
// so keys should list the keys in the order they will be set. keys must
// be distinct lua.LString values, best made once (a package-level list,
// which the compiler lays out in the binary).
func Expect(t *lua.LTable, keys []lua.LValue, more int) {
	if !LayoutMatches {
		return
	}
	x := Of(t)
	if x.Keys != nil || x.K2i != nil {
		return
	}
	n := len(keys) + more
	if x.Strdict == nil {
		x.Strdict = make(map[string]lua.LValue, n)
	}
	x.Keys = make([]lua.LValue, len(keys), n)
	copy(x.Keys, keys)
	x.K2i = make(map[lua.LValue]int, n)
	for i, k := range keys {
		x.K2i[k] = i
	}
}
