package bindings

import (
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/internal/luatable"
)

// Filling a table the script owns ({into = t}) without a map access per
// field. A gopher-lua table keeps its string keys in a Go map
// (LTable.strdict), and each access to it hashes the key: seven fields
// cost ~1000 instructions, the largest part of a receive. An into table
// holds the seven fields and little else, so its strdict is a small Go
// map: one group of 8 slots (a control word, then 8 key/value pairs)
// that the map header points to. fillSlots reads that group once, finds
// the slot of each field by its key, and compares and stores the values
// in place (the store is an ordinary Go store through a *lua.LValue, with
// its write barrier). Adding or removing a key is left to the map: that
// may move slots.
//
// This needs Go's map layout (the swiss tables of Go 1.24 and later:
// internal/runtime/maps), which no API exposes. It is checked on first
// use (slotsUsable, slotsLayoutMatches: a map made and read both ways must
// agree); on any difference every field goes through the map as before.

// swissMap mirrors the head of internal/runtime/maps.Map.
type swissMap struct {
	used   uint64
	_      uintptr        // seed
	dirPtr unsafe.Pointer // a small map's one group
	dirLen int            // 0 for a small map
}

const (
	groupSlots    = 8
	groupCtrlSize = 8  // the control word: one byte per slot, high bit clear when full
	strSlotSize   = 32 // a string key (16 bytes) and a lua.LValue (16 bytes)
	strElemOff    = 16
)

var (
	slotsOK    bool // set by slotsUsable; tests set it to take the map path
	slotsCheck sync.Once
)

// slotsUsable checks the layout once, on first use rather than when the
// package starts (every process paid 10.5k instructions for it), and
// returns slotsOK.
func slotsUsable() bool {
	slotsCheck.Do(checkSlots)
	return slotsOK
}

func checkSlots() { slotsOK = slotsLayoutMatches() }

// strdictGroup returns the one group of a small map, nil when sd is empty,
// larger than one group, or the layout is not the one expected.
func strdictGroup(sd map[string]lua.LValue) unsafe.Pointer {
	if !slotsUsable() {
		return nil
	}
	return smallGroup(sd)
}

func smallGroup(sd map[string]lua.LValue) unsafe.Pointer {
	m := *(**swissMap)(unsafe.Pointer(&sd))
	if m == nil || m.dirLen != 0 {
		return nil
	}
	return m.dirPtr
}

// msgSlots are the value slots of the seven message fields in a group,
// in msgKeyNames order, nil for a field that is not there.
type msgSlots [msgFields]*lua.LValue

// The fields' indexes in msgSlots.
const (
	fType = iota
	fBody
	fSrc
	fDst
	fLen
	fSeq
	fTime
)

// fullSlots is a bit per full slot of a group's control word (the high
// bit of each slot's byte), iterated with bits.TrailingZeros64: only the
// slots that hold a key are visited.
func fullSlots(g unsafe.Pointer) uint64 {
	return ^*(*uint64)(g) & 0x8080808080808080
}

// slotAt is the slot of the lowest bit of fullSlots' mask.
func slotAt(g unsafe.Pointer, full uint64) unsafe.Pointer {
	return unsafe.Add(g, groupCtrlSize+uintptr(bits.TrailingZeros64(full)>>3)*strSlotSize)
}

// findSlots returns the slots of the message fields in group g. A key the
// receive path stored is one of msgKeyNames, a slice of msgKeyBlob, so its
// address says which field it is; a key stored otherwise (by the script:
// t.body = x) is compared as a string. byName has a bit per slot (bit 7
// of its byte, as in the control word) whose key is a field found by name,
// other a bit per slot whose key is no field. (Returned by value: stores
// into a caller's msgSlots would each check for the write barrier.)
func findSlots(g unsafe.Pointer) (s msgSlots, byName, other uint64) {
	base := uintptr(unsafe.Pointer(unsafe.StringData(msgKeyBlob)))
	for full := fullSlots(g); full != 0; full &= full - 1 {
		slot := slotAt(g, full)
		v := (*lua.LValue)(unsafe.Add(slot, strElemOff))
		k := *(*string)(slot)
		if off := uintptr(unsafe.Pointer(unsafe.StringData(k))) - base; off < uintptr(len(msgKeyAt)) {
			if at := msgKeyAt[off]; int(at.n) == len(k) {
				s[at.f] = v
				continue
			}
		}
		if f := fieldOf(k); f >= 0 {
			s[f] = v
			byName |= full & -full
		} else {
			other |= full & -full
		}
	}
	return s, byName, other
}

// fieldOf is the message field named k, -1 for none.
func fieldOf(k string) int {
	switch k {
	case "type":
		return fType
	case "body":
		return fBody
	case "src":
		return fSrc
	case "dst":
		return fDst
	case "len":
		return fLen
	case "seq":
		return fSeq
	case "time":
		return fTime
	}
	return -1
}

// slotCache remembers the slots findSlots found in the group of the table
// last received into, for the next receive into it: a loop fills the same
// table, whose keys stay where they are. It is used again only when the
// same group has the same control word (no key added or removed since,
// save one removed and another added in its slot with the same hash
// bits), every field slot still holds its msgKeyNames key (known by its
// address: no other string can be there) and every other full slot still
// holds a key that is no field (compared by name: a field the script added
// in a removed key's slot). Fields found by name are not cached (a key at
// the same address may be another string now).
type slotCache struct {
	g     unsafe.Pointer
	ctrl  uint64
	other uint64
	s     msgSlots
	// full: s has every field but type (which a message may lack), so
	// valid can say the slots take a message's fields.
	full bool
}

// valid reports whether t's strdict is the group c describes, unchanged
// (holds), with a slot for every field but type: fillInPlace can store a
// message's fields there. c.g is set only by slots, on a group the
// layout check (slotsUsable) let it read.
func (c *slotCache) valid(t *lua.LTable) bool {
	if c.g == nil || !c.full {
		return false
	}
	m := *(**swissMap)(unsafe.Pointer(&luatable.Of(t).Strdict))
	if m == nil || m.dirLen != 0 || m.dirPtr != c.g || *(*uint64)(c.g) != c.ctrl {
		return false
	}
	// holds, knowing that every field but type has a slot
	s := &c.s
	if keyData(s[fBody]) != msgKeyData[fBody] || keyData(s[fSrc]) != msgKeyData[fSrc] || keyData(s[fDst]) != msgKeyData[fDst] ||
		keyData(s[fLen]) != msgKeyData[fLen] || keyData(s[fSeq]) != msgKeyData[fSeq] || keyData(s[fTime]) != msgKeyData[fTime] ||
		!keyIs(s[fType], fType) {
		return false
	}
	return c.other == 0 || c.othersHold(c.g)
}

// keyData is the data pointer of the key of value slot p (not nil).
func keyData(p *lua.LValue) *byte {
	return unsafe.StringData(*(*string)(unsafe.Add(unsafe.Pointer(p), -strElemOff)))
}

// othersHold checks that the slots whose keys were no field hold no
// field's key now.
func (c *slotCache) othersHold(g unsafe.Pointer) bool {
	for other := c.other; other != 0; other &= other - 1 {
		if fieldOf(*(*string)(slotAt(g, other))) >= 0 {
			return false
		}
	}
	return true
}

// slots returns the message fields' slots in group g.
func (c *slotCache) slots(g unsafe.Pointer) *msgSlots {
	if g != c.g || *(*uint64)(g) != c.ctrl || !c.holds(g) {
		s, byName, other := findSlots(g)
		c.g, c.ctrl, c.other, c.s = g, *(*uint64)(g), other, s
		c.full = s[fBody] != nil && s[fSrc] != nil && s[fDst] != nil && s[fLen] != nil && s[fSeq] != nil && s[fTime] != nil
		if byName != 0 {
			c.g = nil // not for the next receive
		}
	}
	return &c.s
}

// holds checks c's keys in g (same group, same control word).
func (c *slotCache) holds(g unsafe.Pointer) bool {
	s := &c.s
	if !keyIs(s[fType], fType) || !keyIs(s[fBody], fBody) || !keyIs(s[fSrc], fSrc) || !keyIs(s[fDst], fDst) ||
		!keyIs(s[fLen], fLen) || !keyIs(s[fSeq], fSeq) || !keyIs(s[fTime], fTime) {
		return false
	}
	for other := c.other; other != 0; other &= other - 1 {
		if fieldOf(*(*string)(slotAt(g, other))) >= 0 {
			return false
		}
	}
	return true
}

// keyIs reports whether value slot p (nil: none) has field f's key.
func keyIs(p *lua.LValue, f int) bool {
	return p == nil || unsafe.StringData(*(*string)(unsafe.Add(unsafe.Pointer(p), -strElemOff))) == msgKeyData[f]
}

// isNil is v == lua.LNil without runtime.ifaceeq (which comparing two
// interfaces of the same dynamic type calls: ~20 instructions).
func isNil(v lua.LValue) bool {
	_, ok := v.(*lua.LNilType)
	return ok
}

// put stores x in slot p unless it holds that very box already.
func put(p *lua.LValue, x lua.LValue) {
	if !sameBox(*p, x) {
		*p = x
	}
}

// fillSlots sets the message fields in t in place when they all can be:
// t's strdict is one group that holds every field the message has and
// none it lacks. It returns false, having changed nothing, otherwise.
func fillSlots(c *slotCache, t *lua.LTable, typ, body, src, dst, n, seq, tm lua.LValue) bool {
	g := strdictGroup(luatable.Of(t).Strdict)
	if g == nil {
		return false
	}
	s := c.slots(g)
	if s[fBody] == nil || s[fSrc] == nil || s[fDst] == nil || s[fLen] == nil || s[fSeq] == nil || s[fTime] == nil ||
		(s[fType] == nil) != isNil(typ) || isNil(body) {
		return false
	}
	if s[fType] != nil {
		put(s[fType], typ)
	}
	put(s[fBody], body)
	put(s[fSrc], src)
	put(s[fDst], dst)
	put(s[fLen], n)
	*s[fSeq] = seq
	*s[fTime] = tm
	return true
}

// groupFields is optFields for a strdict of one group: each key the group
// holds is compared with names, and the value of a match read in place,
// with no hash of a name (an options table is small: {into = t} is one
// group with one key). It returns false, having read nothing, when sd is
// not one group or the layout is not the one expected.
func groupFields(sd map[string]lua.LValue, names []string, v []lua.LValue) bool {
	g := strdictGroup(sd)
	if g == nil {
		return false
	}
	for full := fullSlots(g); full != 0; full &= full - 1 {
		slot := slotAt(g, full)
		k := *(*string)(slot)
		for j, name := range names {
			if k == name {
				v[j] = *(*lua.LValue)(unsafe.Add(slot, strElemOff))
				break
			}
		}
	}
	return true
}

// soleField returns the one key of sd and its value, read in place; ok is
// false when sd holds another number of keys, is not one group, or the
// layout is not the one expected.
func soleField(sd map[string]lua.LValue) (k string, v lua.LValue, ok bool) {
	if !slotsUsable() {
		return "", nil, false
	}
	m := *(**swissMap)(unsafe.Pointer(&sd))
	if m == nil || m.dirLen != 0 || m.used != 1 || m.dirPtr == nil {
		return "", nil, false
	}
	full := fullSlots(m.dirPtr)
	if full == 0 {
		return "", nil, false
	}
	slot := slotAt(m.dirPtr, full)
	return *(*string)(slot), *(*lua.LValue)(unsafe.Add(slot, strElemOff)), true
}

// slotsLayoutMatches reports whether a map[string]lua.LValue is laid out
// as strdictGroup and msgSlots read it: a small map's fields found in
// place hold what the map says, and a store in place is what the map
// then returns. Only Go releases whose maps are known to be laid out so
// are tried (a later one may differ: reading its map as a group could
// fault); a build of one of them with GOEXPERIMENT=noswissmap fails the
// check without harm (its header's third word is then a bucket array,
// larger than a group, whose key words are read as keys).
func slotsLayoutMatches() bool {
	v := runtime.Version()
	if !strings.HasPrefix(v, "go1.24") && !strings.HasPrefix(v, "go1.25") && !strings.HasPrefix(v, "go1.26") {
		return false
	}
	if unsafe.Sizeof("") != 16 || unsafe.Sizeof(lua.LValue(nil)) != 16 || unsafe.Sizeof(uintptr(0)) != 8 {
		return false
	}
	sd := make(map[string]lua.LValue, groupSlots)
	names := []string{"type", "body", "src", "dst", "len", "seq", "time", "other"}
	for i, k := range names {
		sd[k] = lua.LNumber(i + 1)
	}
	g := smallGroup(sd)
	if g == nil || (*(**swissMap)(unsafe.Pointer(&sd))).used != uint64(len(names)) {
		return false
	}
	s, _, _ := findSlots(g)
	for i, p := range s {
		if p == nil || *p != lua.LNumber(i+1) {
			return false
		}
		*p = lua.LString(names[i] + "!")
	}
	for _, k := range names[:7] {
		if sd[k] != lua.LString(k+"!") {
			return false
		}
	}
	return sd["other"] == lua.LNumber(8)
}
