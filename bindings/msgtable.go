package bindings

import (
	"fmt"
	"maps"
	"sync"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/internal/luatable"
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
	body, n, err := m.decodeBody(L, msg)
	if err != nil {
		return nil, err
	}
	return m.tmpl.newMessageTable(&[msgFields]lua.LValue{
		m.typeValue(msg.Type),
		body,
		m.nameOf(msg.Src),
		dst,
		boxInt(n),
		m.nums.int(msg.Seq),
		m.nums.box(float64(msg.Time) / 1e9),
	}), nil
}

// bodyLen is a message's len: the body's size in bytes as the script
// sees it, a string's length (#body), else the size of its encoding.
func bodyLen(body lua.LValue, encoded []byte) int {
	if s, ok := body.(lua.LString); ok {
		return len(s)
	}
	return len(encoded)
}

// decodeBody decodes the body of the message just received and returns it
// with its len (bodyLen); a one-off large body's buffer is let go. err
// names the sender, as receive reports it.
func (m *messenger) decodeBody(L *lua.LState, msg *ipc.Message) (lua.LValue, int, error) {
	body, err := m.decoder().decode(L, msg.Body)
	n := bodyLen(body, msg.Body)
	if cap(msg.Body) > 1<<20 {
		msg.Body = nil // a one-off large message is not kept
	}
	if err != nil {
		return nil, 0, fmt.Errorf("message from %s: %w", m.nameOf(msg.Src), err)
	}
	return body, n, nil
}

// fillMessageTable sets the fields of the message just received in t, a
// table the script owns ({into = t}): the same fields messageTable
// builds, the absent ones set to nil. Once t has had every field, refilling
// it allocates nothing, so a loop receiving into one table makes no
// per-message garbage beyond the values themselves (a new string body,
// numbers that need a box).
func (m *messenger) fillMessageTable(L *lua.LState, t *lua.LTable, msg *ipc.Message, dst lua.LValue) error {
	body, n, err := m.decodeBody(L, msg)
	if err != nil {
		return err
	}
	typ, src := m.typeValue(msg.Type), m.nameOf(msg.Src)
	seq, tm := m.nums.int(msg.Seq), m.nums.box(float64(msg.Time)/1e9)
	m.setMessageFields(t, typ, body, src, dst, boxInt(n), seq, tm)
	return nil
}

// fillInPlace is fillMessageTable for a table whose fields the last
// receive found (slotCache), still where they were: the values are stored
// in their slots with no look-up, no map access and no check of Go's map
// layout (made when the slots were found). It returns false, having done
// nothing (the body is not decoded), when t is not that table or its keys
// changed; a body that fails to decode raises, as fillMessageTable's
// caller does.
func (m *messenger) fillInPlace(L *lua.LState, what string, t *lua.LTable, msg *ipc.Message, dst lua.LValue) bool {
	c := &m.slots
	if !c.valid(t) {
		return false
	}
	d := m.decoder()
	var body lua.LValue
	var n int
	if d.repeated(msg.Body) {
		// the previous short string body again (decode's first case,
		// without the call)
		body, n, d.reused = d.lastShort, len(d.lastBytes), true
	} else {
		var err error
		if body, n, err = m.decodeBody(L, msg); err != nil {
			undecodable(L, what, err)
		}
	}
	s := &c.s
	typ := lua.LValue(lua.LNil)
	if msg.Type != "" {
		typ = m.typeValue(msg.Type)
	}
	if (s[fType] == nil) != (msg.Type == "") || isNil(body) {
		// a key to add or remove: the map's business
		m.setMessageFields(t, typ, body, m.srcName(msg.Src), dst, boxInt(n), m.nums.int(msg.Seq), m.nums.box(float64(msg.Time)/1e9))
		return true
	}
	if s[fType] != nil {
		put(s[fType], typ)
	}
	put(s[fBody], body)
	put(s[fSrc], m.srcName(msg.Src))
	put(s[fDst], dst)
	if n < 1024 {
		put(s[fLen], smallInt(n))
	} else {
		put(s[fLen], boxInt(n))
	}
	*s[fSeq] = m.nums.int(msg.Seq)
	*s[fTime] = m.nums.box(float64(msg.Time) / 1e9)
	return true
}

// undecodable raises fillInPlace's error: receive's for a body that does
// not decode. Apart, so fillInPlace's frame holds none of it.
//
//go:noinline
func undecodable(L *lua.LState, what string, err error) {
	L.RaiseError("%s: %v", what, err)
}

// setMessageFields sets the message fields in t: in place when fillSlots
// can, else through the map.
func (m *messenger) setMessageFields(t *lua.LTable, typ, body, src, dst, n, seq, tm lua.LValue) {
	if !msgTablesReady() {
		for i, x := range [msgFields]lua.LValue{typ, body, src, dst, n, seq, tm} {
			t.RawSetString(msgKeyNames[i], x)
		}
		return
	}
	// RawSetString assigns the value and then looks the key up in k2i
	// (hashing an interface) to list it for pairs(). A key already in
	// strdict is listed (RawSetString, the only writer of strdict, lists
	// every key it stores), so a value can be stored straight into
	// strdict when the key was there: a store that makes strdict longer
	// added the key, which RawSetString then lists. Each map access hashes
	// the key (~130 instructions), so every field costs one access:
	//   - seq and time differ from message to message: stored blind;
	//   - type, src, dst and len repeat in a stream (boxed once): looked up
	//     and stored only when they differ;
	//   - body is stored blind when the decoder made it for this message,
	//     looked up when it is the previous message's string again;
	//   - an absent field is looked up, and deleted only when present.
	if fillSlots(&m.slots, t, typ, body, src, dst, n, seq, tm) {
		return // in place (fieldslots.go)
	}
	lt := luatable.Of(t)
	if lt.Strdict == nil {
		// One group of 8 slots: the seven fields and one key of the
		// script's own (Lua's {} has none; RawSetString would make 32),
		// which later receives fill in place.
		lt.Strdict = make(map[string]lua.LValue, msgFields+1)
	} else if len(lt.Strdict) <= 1 && slotsUsable() && smallGroup(lt.Strdict) == nil {
		// A table RawSetString gave 32 slots, holding one key: the
		// same in a map of one group.
		sd := make(map[string]lua.LValue, msgFields+1)
		for k, v := range lt.Strdict {
			sd[k] = v
		}
		lt.Strdict = sd
	}
	sd := lt.Strdict
	// The keys are msgKeyNames' strings, which the next fillSlots knows
	// by their address.
	keepField(t, sd, msgKeyNames[fType], typ)
	if m.decoder().reused {
		keepField(t, sd, msgKeyNames[fBody], body)
	} else {
		putField(t, sd, msgKeyNames[fBody], body)
	}
	keepField(t, sd, msgKeyNames[fSrc], src)
	keepField(t, sd, msgKeyNames[fDst], dst)
	keepField(t, sd, msgKeyNames[fLen], n)
	putField(t, sd, msgKeyNames[fSeq], seq)
	putField(t, sd, msgKeyNames[fTime], tm)
}

// keepField sets t[k] = x (sd is t's strdict), looking k up first: a
// value that is the very box t holds is not stored again. nil deletes.
func keepField(t *lua.LTable, sd map[string]lua.LValue, k string, x lua.LValue) {
	old, ok := sd[k]
	switch {
	case x == lua.LNil:
		if ok {
			delete(sd, k)
		}
	case !ok:
		t.RawSetString(k, x) // lists k
	case !sameBox(old, x):
		sd[k] = x
	}
}

// putField sets t[k] = x (not nil) without looking k up first.
func putField(t *lua.LTable, sd map[string]lua.LValue, k string, x lua.LValue) {
	n := len(sd)
	sd[k] = x
	if len(sd) != n {
		t.RawSetString(k, x) // a new key: list it
	}
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
// a template. It needs gopher-lua's LTable layout, which is checked on
// first use (msgTablesReady); on any difference the plain RawSetString path is
// used.

const msgFields = 7

var (
	// msgKeyBlob holds the field names end to end and msgKeyNames are its
	// slices, so a key the receive path stored in an into table is known
	// by its address (findSlots): msgKeyAt[offset] is its field and length.
	msgKeyBlob  = "typebodysrcdstlenseqtime"
	msgKeyNames = [msgFields]string{msgKeyBlob[0:4], msgKeyBlob[4:8], msgKeyBlob[8:11], msgKeyBlob[11:14], msgKeyBlob[14:17], msgKeyBlob[17:20], msgKeyBlob[20:24]}
	msgKeyAt    = keyOffsets()
	msgKeyData  = [msgFields]*byte{unsafe.StringData(msgKeyNames[0]), unsafe.StringData(msgKeyNames[1]), unsafe.StringData(msgKeyNames[2]),
		unsafe.StringData(msgKeyNames[3]), unsafe.StringData(msgKeyNames[4]), unsafe.StringData(msgKeyNames[5]), unsafe.StringData(msgKeyNames[6])}
	msgKeys   []lua.LValue       // msgKeyNames boxed, len == cap
	msgKeyPos map[lua.LValue]int // key -> index in msgKeys
	// msgStrTemplate has every key (with a placeholder value): each
	// message's strdict starts as a clone of it. Never written.
	msgStrTemplate map[string]lua.LValue
	fastTables     bool // set by msgTablesReady
	msgTablesOnce  sync.Once
)

// keyAt is what msgKeyAt says of an offset in msgKeyBlob: the field whose
// name starts there and the name's length (n = 0xff: none starts there,
// and no key that long can start within the blob).
type keyAt struct{ f, n uint8 }

func keyOffsets() (at [len("typebodysrcdstlenseqtime")]keyAt) {
	for i := range at {
		at[i].n = 0xff
	}
	off := 0
	for f, k := range [msgFields]string{"type", "body", "src", "dst", "len", "seq", "time"} {
		at[off] = keyAt{uint8(f), uint8(len(k))}
		off += len(k)
	}
	return at
}

// msgTablesReady builds the tables above and checks LTable's layout on
// first use, not when the package starts: every process of a run did it
// (with slotsUsable, ~18k instructions of a child's start, callgrind),
// and a process that receives no message needs neither. It returns
// fastTables.
func msgTablesReady() bool {
	msgTablesOnce.Do(initMsgTables)
	return fastTables
}

func initMsgTables() {
	fastTables = luatable.LayoutMatches
	msgKeys = make([]lua.LValue, msgFields)
	msgKeyPos = make(map[lua.LValue]int, msgFields)
	msgStrTemplate = make(map[string]lua.LValue, msgFields)
	for i, k := range msgKeyNames {
		msgKeys[i] = lua.LString(k)
		msgKeyPos[msgKeys[i]] = i
		msgStrTemplate[k] = lua.LTrue
	}
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
	if !msgTablesReady() {
		t := &lua.LTable{Metatable: lua.LNil}
		for i, k := range msgKeyNames {
			if v[i] != lua.LNil {
				t.RawSetString(k, v[i])
			}
		}
		return t
	}
	t := &lua.LTable{Metatable: lua.LNil}
	lt := luatable.Of(t)
	// Cloning a small map copies its one group of slots; overwriting a
	// key already there is then cheaper than inserting into a new map.
	if base := tm.base(v); base != nil {
		lt.Strdict = maps.Clone(base)
		for _, f := range msgVariable {
			if v[f] != lua.LNil {
				lt.Strdict[msgKeyNames[f]] = v[f]
			} else {
				delete(lt.Strdict, msgKeyNames[f])
			}
		}
	} else {
		lt.Strdict = maps.Clone(msgStrTemplate)
		for i, k := range msgKeyNames {
			if v[i] != lua.LNil {
				lt.Strdict[k] = v[i]
			} else {
				delete(lt.Strdict, k)
			}
		}
	}
	// A key listed without a value is skipped by pairs() (as after
	// t.k = nil), so every table can share the full list.
	lt.Keys = msgKeys
	lt.K2i = maps.Clone(msgKeyPos)
	return t
}

// optFields reads the fields names of an options table t into v, in
// names order, lua.LNil where absent. Looking each name up costs a map
// access (a string hash) per name, present or not, and a receive has five
// options; an options table usually holds one or two ({into = t}), so
// when t has no more keys than there are names, only the keys t lists
// (LTable.keys: every string key RawSetString ever stored, see
// fillMessageTable) are looked up. Keys that are not options are ignored
// either way.
func optFields(t *lua.LTable, names []string, v []lua.LValue) {
	for i := range v {
		v[i] = lua.LNil
	}
	if msgTablesReady() {
		lt := luatable.Of(t)
		if groupFields(lt.Strdict, names, v) {
			return // read in place (fieldslots.go)
		}
		if len(lt.Keys) <= len(names) {
			for _, k := range lt.Keys {
				s, ok := k.(lua.LString)
				if !ok {
					continue
				}
				for i, name := range names {
					if string(s) == name {
						if x, ok := lt.Strdict[name]; ok {
							v[i] = x
						}
						break
					}
				}
			}
			return
		}
	}
	for i, name := range names {
		v[i] = t.RawGetString(name)
	}
}

// numBoxes boxes the numbers of received messages (seq, time) as Lua
// values. A number in an interface is a pointer to 8 bytes, which Go
// allocates one at a time (convT64: a malloc per number, two per message,
// ~220 instructions); here they are cut from a slab of numSlab, one malloc
// per numSlab numbers. The bytes are the same 8 per number; a number the
// script keeps holds its slab (numSlab*8 bytes) alive. An interface's data
// word is never written through, so the slab's slots are never shared.
type numBoxes struct {
	slab *[numSlab]float64 // the current slab
	next int               // its first slot not handed out
}

const numSlab = 64

// numProto is a boxed LNumber whose type word the boxes copy.
var numProto lua.LValue = lua.LNumber(0)

func (b *numBoxes) box(f float64) lua.LValue {
	// An index, not a slice cut shorter per number: the slice's pointer
	// was stored (with a write barrier check) twice a message.
	if uint(b.next) >= numSlab || b.slab == nil {
		b.slab, b.next = new([numSlab]float64), 0
	}
	p := &b.slab[b.next]
	b.next++
	*p = f
	v := numProto
	(*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1] = unsafe.Pointer(p)
	return v
}

// int is boxInt: small numbers shared, others from the slab.
func (b *numBoxes) int(n uint64) lua.LValue {
	if n < 1024 {
		return smallInt(int(n))
	}
	return b.box(float64(n))
}
