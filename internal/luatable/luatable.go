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
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// table is lua.LTable's layout.
type table struct {
	Metatable lua.LValue
	array     []lua.LValue
	dict      map[lua.LValue]lua.LValue
	strdict   map[string]lua.LValue
	keys      []lua.LValue
	k2i       map[lua.LValue]int
}

// Both sizes equal, or one of these arrays has a negative length.
var (
	_ [unsafe.Sizeof(lua.LTable{}) - unsafe.Sizeof(table{})]byte
	_ [unsafe.Sizeof(table{}) - unsafe.Sizeof(lua.LTable{})]byte
)

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
	x := (*table)(unsafe.Pointer(t))
	if x.keys != nil || x.k2i != nil {
		return
	}
	n := len(keys) + more
	if x.strdict == nil {
		x.strdict = make(map[string]lua.LValue, n)
	}
	x.keys = make([]lua.LValue, len(keys), n)
	copy(x.keys, keys)
	x.k2i = make(map[lua.LValue]int, n)
	for i, k := range keys {
		x.k2i[k] = i
	}
}
