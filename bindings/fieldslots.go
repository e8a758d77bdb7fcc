package bindings

import (
	"runtime"
	"strings"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
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
// internal/runtime/maps), which no API exposes. It is checked when the
// package starts (slotsLayoutMatches: a map made and read both ways must
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

var slotsOK = slotsLayoutMatches()

// strdictGroup returns the one group of a small map, nil when sd is empty,
// larger than one group, or the layout is not the one expected.
func strdictGroup(sd map[string]lua.LValue) unsafe.Pointer {
	if !slotsOK {
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
// nil for a field that is not there.
type msgSlots struct {
	typ, body, src, dst, len, seq, time *lua.LValue
}

// find sets the slots of the message fields in group g.
func (s *msgSlots) find(g unsafe.Pointer) {
	*s = msgSlots{}
	ctrl := *(*uint64)(g)
	for i := uintptr(0); i < groupSlots; i, ctrl = i+1, ctrl>>8 {
		if ctrl&0x80 != 0 {
			continue // empty or deleted
		}
		slot := unsafe.Add(g, groupCtrlSize+i*strSlotSize)
		v := (*lua.LValue)(unsafe.Add(slot, strElemOff))
		switch *(*string)(slot) {
		case "type":
			s.typ = v
		case "body":
			s.body = v
		case "src":
			s.src = v
		case "dst":
			s.dst = v
		case "len":
			s.len = v
		case "seq":
			s.seq = v
		case "time":
			s.time = v
		}
	}
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
func fillSlots(t *lua.LTable, typ, body, src, dst, n, seq, tm lua.LValue) bool {
	g := strdictGroup((*ltable)(unsafe.Pointer(t)).strdict)
	if g == nil {
		return false
	}
	var s msgSlots
	s.find(g)
	if s.body == nil || s.src == nil || s.dst == nil || s.len == nil || s.seq == nil || s.time == nil ||
		(s.typ == nil) != (typ == lua.LNil) || body == lua.LNil {
		return false
	}
	if s.typ != nil {
		put(s.typ, typ)
	}
	put(s.body, body)
	put(s.src, src)
	put(s.dst, dst)
	put(s.len, n)
	*s.seq = seq
	*s.time = tm
	return true
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
	var s msgSlots
	s.find(g)
	for i, p := range []*lua.LValue{s.typ, s.body, s.src, s.dst, s.len, s.seq, s.time} {
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
