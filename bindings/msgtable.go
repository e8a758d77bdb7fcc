package bindings

import (
	"fmt"
	"maps"
	"reflect"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

// typeValue boxes a received type once per change of type.
func (m *messenger) typeValue(t string) lua.LValue {
	if t == "" {
		return lua.LNil
	}
	if t != m.lastType || m.lastTypeV == nil {
		m.lastType, m.lastTypeV = t, lua.LString(t)
	}
	return m.lastTypeV
}

// messageTable turns the message just received into its Lua table:
// {type=, body=, src=, dst=, len=, seq=, time=}.
func (m *messenger) messageTable(L *lua.LState, msg *ipc.Message, dst lua.LValue) (*lua.LTable, error) {
	body, err := m.dec.decode(L, msg.Body)
	// len is the body's size in bytes as the script sees it: a string's
	// length (#body), else the size of its encoding.
	n := len(msg.Body)
	if s, ok := body.(lua.LString); ok {
		n = len(s)
	}
	if cap(msg.Body) > 1<<20 {
		msg.Body = nil // a one-off large message is not kept
	}
	if err != nil {
		return nil, fmt.Errorf("message from %s: %w", m.nameOf(msg.Src), err)
	}
	return m.tmpl.newMessageTable(&[msgFields]lua.LValue{
		m.typeValue(msg.Type),
		body,
		m.nameOf(msg.Src),
		dst,
		boxInt(n),
		boxInt(msg.Seq),
		lua.LNumber(float64(msg.Time) / 1e9),
	}), nil
}

// fillMessageTable sets the fields of the message just received in t, a
// table the script owns ({into = t}): the same fields messageTable
// builds, the absent ones set to nil. Once t has had every field, refilling
// it allocates nothing, so a loop receiving into one table makes no
// per-message garbage beyond the values themselves (a new string body,
// numbers that need a box).
func (m *messenger) fillMessageTable(L *lua.LState, t *lua.LTable, msg *ipc.Message, dst lua.LValue) error {
	body, err := m.dec.decode(L, msg.Body)
	if cap(msg.Body) > 1<<20 {
		msg.Body = nil // a one-off large message is not kept
	}
	if err != nil {
		return fmt.Errorf("message from %s: %w", m.nameOf(msg.Src), err)
	}
	v := [msgFields]lua.LValue{
		m.typeValue(msg.Type),
		body,
		m.nameOf(msg.Src),
		dst,
		boxInt(len(msg.Body)),
		boxInt(msg.Seq),
		lua.LNumber(float64(msg.Time) / 1e9),
	}
	if !fastTables {
		for i, k := range msgKeyNames {
			t.RawSetString(k, v[i])
		}
		return nil
	}
	// RawSetString assigns the value and then looks the key up in k2i
	// (hashing an interface) to list it for pairs(). A key already in
	// strdict is listed (RawSetString, the only writer of strdict, lists
	// every key it stores), so it is enough to store a value that
	// differs: the type, src, dst and len of a stream repeat, boxed once.
	sd := (*ltable)(unsafe.Pointer(t)).strdict
	for i, k := range msgKeyNames {
		if v[i] == lua.LNil {
			delete(sd, k)
			continue
		}
		if old, ok := sd[k]; ok {
			if !sameBox(old, v[i]) {
				sd[k] = v[i]
			}
			continue
		}
		t.RawSetString(k, v[i])
		sd = (*ltable)(unsafe.Pointer(t)).strdict // made by the first RawSetString
	}
	return nil
}

// sameBox reports whether a and b are the very same boxed value.
func sameBox(a, b lua.LValue) bool {
	return *(*[2]uintptr)(unsafe.Pointer(&a)) == *(*[2]uintptr)(unsafe.Pointer(&b))
}

// A received message is a table with seven string keys, built for every
// message: it is the receive path's main cost. gopher-lua's RawSetString
// keeps, besides the map of values, a list of keys and a key -> position
// map for pairs(), both grown one key at a time (a dozen allocations per
// table). newMessageTable builds the same three structures at once: the
// key list is shared by every message table (full to capacity, so a key a
// script adds makes a table its own copy), the position map is cloned from
// a template. It needs gopher-lua's LTable layout, which is checked when
// the package starts; on any difference the plain RawSetString path is
// used.

const msgFields = 7

var (
	msgKeyNames = [msgFields]string{"type", "body", "src", "dst", "len", "seq", "time"}
	msgKeys     []lua.LValue       // msgKeyNames boxed, len == cap
	msgKeyPos   map[lua.LValue]int // key -> index in msgKeys
	// msgStrTemplate has every key (with a placeholder value): each
	// message's strdict starts as a clone of it. Never written.
	msgStrTemplate map[string]lua.LValue
	fastTables     = tableLayoutMatches()
)

func init() {
	msgKeys = make([]lua.LValue, msgFields)
	msgKeyPos = make(map[lua.LValue]int, msgFields)
	msgStrTemplate = make(map[string]lua.LValue, msgFields)
	for i, k := range msgKeyNames {
		msgKeys[i] = lua.LString(k)
		msgKeyPos[msgKeys[i]] = i
		msgStrTemplate[k] = lua.LTrue
	}
}

// ltable mirrors lua.LTable (gopher-lua v1.1.x).
type ltable struct {
	Metatable lua.LValue
	array     []lua.LValue
	dict      map[lua.LValue]lua.LValue
	strdict   map[string]lua.LValue
	keys      []lua.LValue
	k2i       map[lua.LValue]int
}

// tableLayoutMatches reports whether lua.LTable is laid out as ltable:
// the same field names, types and offsets.
func tableLayoutMatches() bool {
	got, want := reflect.TypeFor[lua.LTable](), reflect.TypeFor[ltable]()
	if got.Size() != want.Size() || got.NumField() != want.NumField() {
		return false
	}
	for i := range got.NumField() {
		g, w := got.Field(i), want.Field(i)
		if g.Name != w.Name || g.Type != w.Type || g.Offset != w.Offset {
			return false
		}
	}
	return true
}

// msgTemplate serves a stream of messages whose type, src, dst and len
// repeat (one sender, one type, one size): it holds a strdict with those
// four fields and placeholders for body, seq and time, so that a message's
// strdict is its clone with three values set instead of seven. It is built
// when two messages in a row agree on the four and differ from it, and is
// never written once built: tables get clones. The zero value is ready.
type msgTemplate struct {
	key, last [4]lua.LValue // the template's four values; the last message's
	strdict   map[string]lua.LValue
}

// The fields a template fixes, and those set in each clone.
var (
	msgFixed    = [4]int{0, 2, 3, 4} // type, src, dst, len
	msgVariable = [3]int{1, 5, 6}    // body, seq, time
)

// base returns the template's strdict for v's message, nil when there is
// none for it.
func (tm *msgTemplate) base(v *[msgFields]lua.LValue) map[string]lua.LValue {
	var fixed [4]lua.LValue
	for i, f := range msgFixed {
		fixed[i] = v[f]
	}
	if tm.strdict != nil && sameBoxes(&fixed, &tm.key) {
		return tm.strdict
	}
	if !sameBoxes(&fixed, &tm.last) {
		tm.last = fixed
		return nil
	}
	d := make(map[string]lua.LValue, msgFields)
	for _, f := range msgFixed {
		if v[f] != lua.LNil {
			d[msgKeyNames[f]] = v[f]
		}
	}
	for _, f := range msgVariable {
		d[msgKeyNames[f]] = lua.LTrue
	}
	tm.key, tm.strdict = fixed, d
	return d
}

// sameBoxes reports whether a and b hold the very same boxed values (the
// same type and data words). The message fields a template fixes are boxed
// once and reused (typeValue, nameOf, boxInt), so this is the cheap test;
// equal values boxed apart compare different, which only costs a miss.
func sameBoxes(a, b *[4]lua.LValue) bool {
	return *(*[8]uintptr)(unsafe.Pointer(a)) == *(*[8]uintptr)(unsafe.Pointer(b))
}

// newMessageTable returns a table with the message fields that are not
// nil, in msgKeyNames order.
func (tm *msgTemplate) newMessageTable(v *[msgFields]lua.LValue) *lua.LTable {
	if !fastTables {
		t := &lua.LTable{Metatable: lua.LNil}
		for i, k := range msgKeyNames {
			if v[i] != lua.LNil {
				t.RawSetString(k, v[i])
			}
		}
		return t
	}
	t := &lua.LTable{Metatable: lua.LNil}
	lt := (*ltable)(unsafe.Pointer(t))
	// Cloning a small map copies its one group of slots; overwriting a
	// key already there is then cheaper than inserting into a new map.
	if base := tm.base(v); base != nil {
		lt.strdict = maps.Clone(base)
		for _, f := range msgVariable {
			if v[f] != lua.LNil {
				lt.strdict[msgKeyNames[f]] = v[f]
			} else {
				delete(lt.strdict, msgKeyNames[f])
			}
		}
	} else {
		lt.strdict = maps.Clone(msgStrTemplate)
		for i, k := range msgKeyNames {
			if v[i] != lua.LNil {
				lt.strdict[k] = v[i]
			} else {
				delete(lt.strdict, k)
			}
		}
	}
	// A key listed without a value is skipped by pairs() (as after
	// t.k = nil), so every table can share the full list.
	lt.keys = msgKeys
	lt.k2i = maps.Clone(msgKeyPos)
	return t
}
