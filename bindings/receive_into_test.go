package bindings

import (
	"runtime"
	"strings"
	"testing"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/internal/luatable"
	"github.com/ipcscript/ipcscript/ipc"
)

// {into = t}: the message's fields land in t, which is returned; fields
// the message lacks are cleared; the table stays the script's own. Both
// ways of filling: in place (fieldslots.go) and through the map.
func TestReceiveInto(t *testing.T) {
	if !slotsUsable() && (strings.HasPrefix(runtime.Version(), "go1.26") || strings.HasPrefix(runtime.Version(), "go1.25")) {
		t.Errorf("%s: the in-place fill of an into table is off: Go's map layout changed?", runtime.Version())
	}
	saved := slotsOK
	defer func() { slotsOK = saved }()
	for _, inPlace := range []bool{true, false} {
		slotsOK = saved && inPlace
		testReceiveInto(t)
	}
}

func testReceiveInto(t *testing.T) {
	L, _ := parentState(t, twoProcs)
	err := L.DoString(`
		local t = {mine = "kept"}
		assert(box:send("one", {type = "a"}))
		assert(box:send({x = 2}))
		local m = box:receive({into = t})
		assert(m == t, "returns the table it was given")
		assert(t.type == "a" and t.body == "one" and t.src == "main" and t.dst == "jobs", "fields")
		assert(t.len == 3 and t.seq == 1 and type(t.time) == "number", "len/seq/time")
		assert(t.mine == "kept", "other keys are left alone")
		local m = box:receive({into = t})
		assert(m == t and t.type == nil and t.body.x == 2 and t.seq == 2, "a field the message lacks is cleared")
		local n = 0
		for k in pairs(t) do n = n + 1 end
		assert(n == 7, "pairs sees the fields present: " .. n)
		assert(ipc.send("main", "direct"))
		assert(ipc.receive({into = t}).body == "direct" and t.dst == "main")
		local ok, err = pcall(box.receive, box, {into = 5})
		assert(not ok and err:find("into must be a table"), tostring(err))
		local v, err = box:receive({into = t, block = false})
		assert(v == nil and err == "empty" and t.body == "direct", "a failed receive leaves t alone")
		-- fields the script changed or removed between receives are set again
		assert(box:send("direct"))
		t.src, t.body, t.type, t.seq, t.len = "someone", "else", "t", nil, nil
		assert(box:receive({into = t}) == t)
		assert(t.src == "main" and t.body == "direct" and t.type == nil and t.seq == 3 and t.len == 6, "refilled: " .. tostring(t.src) .. " " .. tostring(t.body) .. " " .. tostring(t.type) .. " " .. tostring(t.seq) .. " " .. tostring(t.len))
		local keys = {}
		for k in pairs(t) do keys[#keys + 1] = k end
		table.sort(keys)
		assert(table.concat(keys, " ") == "body dst len mine seq src time", table.concat(keys, " "))
		-- a type comes and goes; a table that had a key of its own first
		assert(box:send("a", {type = "x"}) and box:send("b") and box:send("c", {type = "y"}))
		assert(box:receive({into = t}).type == "x" and t.body == "a")
		assert(box:receive({into = t}).type == nil and t.body == "b")
		assert(box:receive({into = t}).type == "y" and t.body == "c")
		-- the slots found for one receive (slotCache) are not trusted
		-- blindly by the next: a key the script added, removed or moved
		local v = {}
		assert(box:send(1) and box:receive({into = v}).body == 1)
		v.own = 1
		assert(box:send(2) and box:receive({into = v}).body == 2 and v.own == 1)
		v.own, v.type = nil, "mine"
		assert(box:send(3) and box:receive({into = v}).type == nil and v.body == 3 and v.len == 1)
		v.body, v.extra = nil, true
		assert(box:send(4) and box:receive({into = v}).body == 4 and v.extra and v.type == nil)
		v.type = "again"
		assert(box:send(5) and box:receive({into = v}).type == nil and v.body == 5)
		local u = {}
		u.own = 1
		for i = 1, 3 do
			assert(box:send(i))
			assert(box:receive({into = u}).body == i and u.own == 1 and u.seq == 11 + i and u.len == 1)
		end
	`)
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkReceiveInto is BenchmarkMailbox receiving into one table the
// script owns, with one options table: the steady state of a consumer loop.
func BenchmarkReceiveInto(b *testing.B) {
	benchSendReceive(b, `ipc = require("ipc"); box = ipc.mailbox("m")`, receiveIntoLoop)
}

const receiveIntoLoop = `
	local n, body = ...
	local box = box
	local o = {into = {}}
	for _ = 1, n do
		box:send(body)
		box:receive(o)
	end`

// BenchmarkReceiveIntoDistinct is the same with a different 64-byte body
// every message (made before the timed loop), so no body string is reused.
func BenchmarkReceiveIntoDistinct(b *testing.B) {
	L, _ := parentState(b, `ipc = require("ipc"); box = ipc.mailbox("m")`)
	bodies := L.NewTable()
	for i := range 1024 {
		bodies.Append(lua.LString(strings.Repeat("x", 60) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + "yz"))
	}
	fn, err := L.LoadString(`
		local n, bodies = ...
		local box = box
		local o = {into = {}}
		for i = 1, n do
			box:send(bodies[i % 1024 + 1])
			box:receive(o)
		end`)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	L.Push(fn)
	L.Push(lua.LNumber(b.N))
	L.Push(bodies)
	if err := L.PCall(2, 0, nil); err != nil {
		b.Fatal(err)
	}
}

// TestReceiveIntoAllocs asserts issue 12's bound: receiving 64-byte
// messages into a table the script owns allocates at most 64 bytes per
// message (send included), measured as BenchmarkReceiveInto's loop does.
// A count of bytes, not a time.
func TestReceiveIntoAllocs(t *testing.T) {
	L, _ := parentState(t, `ipc = require("ipc"); box = ipc.mailbox("m")`)
	fn, err := L.LoadString(receiveIntoLoop)
	if err != nil {
		t.Fatal(err)
	}
	body := lua.LString(strings.Repeat("x", 64))
	run := func(n int) {
		L.Push(fn)
		L.Push(lua.LNumber(n))
		L.Push(body)
		if err := L.PCall(2, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	run(1000) // warm up: the table gets its fields, the buffers their size
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const n = 20000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	run(n)
	runtime.ReadMemStats(&after)
	perMsg := float64(after.TotalAlloc-before.TotalAlloc) / n
	t.Logf("%.1f bytes, %.2f allocations per message", perMsg, float64(after.Mallocs-before.Mallocs)/n)
	if perMsg > 64 {
		t.Fatalf("%.1f bytes allocated per 64-byte message received into a table, want at most 64", perMsg)
	}
}

// BenchmarkDirectInto is the direct-link loop of tests/bench/lua/pingpong.lua
// in one process: ipc.send to a process, ipc.receive into a table the
// script owns, the body read back.
func BenchmarkDirectInto(b *testing.B) {
	benchSendReceive(b, `ipc = require("ipc"); ipc.process("p", function() end)`, `
		local n, body = ...
		local ipc = ipc
		local into = {into = {}}
		for _ = 1, n do
			ipc.send("main", body)
			body = ipc.receive(into).body
		end`)
}

// The keys fillMessageTable stores are known by their address when an
// into table is filled again (msgSlots.find): each of msgKeyNames must be
// a slice of msgKeyBlob that msgKeyAt maps back to its field. A compiler
// that made them copies would send every key through the string compare.
func TestMsgKeysByAddress(t *testing.T) {
	base := uintptr(unsafe.Pointer(unsafe.StringData(msgKeyBlob)))
	for i, k := range msgKeyNames {
		off := uintptr(unsafe.Pointer(unsafe.StringData(k))) - base
		if off >= uintptr(len(msgKeyAt)) || int(msgKeyAt[off].f) != i || int(msgKeyAt[off].n) != len(k) {
			t.Errorf("field %d %q: at offset %d of the blob, msgKeyAt says %v", i, k, off, msgKeyAt[min(off, uintptr(len(msgKeyAt)-1))])
		}
	}
	// A table filled once, found again: every slot by address or by name.
	L, _ := parentState(t, `ipc = require("ipc"); box = ipc.mailbox("m")`)
	if err := L.DoString(`o = {into = {}}; box:send("x", {type = "t"}); box:receive(o)`); err != nil {
		t.Fatal(err)
	}
	into := L.GetGlobal("o").(*lua.LTable).RawGetString("into").(*lua.LTable)
	g := strdictGroup(luatable.Of(into).Strdict)
	if g == nil {
		t.Skip("the in-place fill is off")
	}
	s, byName, _ := findSlots(g)
	if byName != 0 {
		t.Errorf("fields found by name, not by address: %#x", byName)
	}
	for i, p := range s {
		if p == nil || *p != into.RawGetString(msgKeyNames[i]) {
			t.Errorf("field %s: slot %v, table says %v", msgKeyNames[i], p, into.RawGetString(msgKeyNames[i]))
		}
	}
}

// A receive loop's table filled in place from the second receive on
// (fillInPlace) takes every kind of message the map path takes: a nil
// body (the body key goes), a type that comes and goes, a table body, a
// key the script adds, and a body that does not decode raises the same
// error as on a table received into for the first time.
func TestReceiveIntoInPlaceChanges(t *testing.T) {
	L, _ := parentState(t, twoProcs)
	err := L.DoString(`
		local o = {into = {}}
		local function one(body, opts)
			assert(box:send(body, opts))
			return box:receive(o)
		end
		local function keys(t)
			local ks = {}
			for k in pairs(t) do ks[#ks + 1] = k end
			table.sort(ks)
			return table.concat(ks, " ")
		end
		for i = 1, 3 do assert(one("x").body == "x" and o.into.seq == i) end
		local m = one(nil)
		assert(m == o.into and m.body == nil and m.len == 1 and m.seq == 4, "a nil body: " .. tostring(m.body))
		assert(keys(m) == "dst len seq src time", keys(m))
		assert(one("x").body == "x" and one("x").body == "x")
		assert(keys(m) == "body dst len seq src time", keys(m))
		m = one("y", {type = "t"})
		assert(m.type == "t" and m.body == "y" and m.seq == 7, "typed")
		m = one("y")
		assert(m.type == nil and m.body == "y" and m.seq == 8, "untyped again")
		m = one({k = 1})
		assert(m.type == nil and m.body.k == 1, "a table body")
		m = one("z")
		assert(m.body == "z" and m.len == 1)
		m.mine = true
		m = one("zz")
		assert(m.body == "zz" and m.len == 2 and m.mine == true)
		assert(keys(m) == "body dst len mine seq src time", keys(m))
		m = one(string.rep("w", 300))
		assert(#m.body == 300 and m.len == 300)
		m = one(string.rep("w", 300))
		assert(#m.body == 300 and m.len == 300 and m.seq == 13)
	`)
	if err != nil {
		t.Fatal(err)
	}
	q := L.GetGlobal("box").(*lua.LUserData).Value.(*mailbox).q
	bad := func() string {
		if err := q.Send(&ipc.Message{Src: -1, Body: []byte{0xc1}}, ipc.WaitOpts{}); err != nil {
			t.Fatal(err)
		}
		err := L.DoString(`box:receive(o)`)
		if err == nil {
			t.Fatal("a body that does not decode was received")
		}
		return strings.SplitN(err.Error(), "\n", 2)[0]
	}
	if err := L.DoString(`o = {into = {}}`); err != nil {
		t.Fatal(err)
	}
	first := bad() // a table no receive filled: the map path
	if err := L.DoString(`assert(box:send("a")); box:receive(o); assert(box:send("a")); box:receive(o)`); err != nil {
		t.Fatal(err)
	}
	if L.GetGlobal("o").(*lua.LTable).RawGetString("into").(*lua.LTable).RawGetString("body") != lua.LString("a") {
		t.Fatal("not filled")
	}
	if again := bad(); again != first || !strings.Contains(first, "not a valid message body") {
		t.Errorf("in place: %q\nfirst:    %q", again, first)
	}
}

// srcName keeps the last sender's name only while the sender's slot
// keeps its serial: a slot given to a spawned process names that one.
func TestSrcNameFollowsSlot(t *testing.T) {
	L, env := parentState(t, twoProcs)
	_ = L
	st, err := ipc.NewStatusTable(8)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Region.Close()
	env.Status = st
	defer func() { env.Status = nil }()
	for _, p := range env.Procs {
		st.Assign(p.Slot, uint32(p.Serial))
	}
	ud := L.Get(lua.RegistryIndex).(*lua.LTable).RawGetString(messengerKey).(*lua.LUserData)
	m := ud.Value.(*messenger)
	b1 := env.Procs[1]
	for range 3 {
		if v := m.srcName(int32(b1.Slot)); v != lua.LString(b1.Name) {
			t.Fatalf("slot %d: %v, want %s", b1.Slot, v, b1.Name)
		}
	}
	if m.src.ws == nil {
		t.Fatal("srcName kept nothing")
	}
	// The slot changes hands: a process spawned later has it now.
	s := &Process{Name: "s.1", Group: "s", Index: 1, Count: 1, Slot: b1.Slot, Serial: 99}
	env.Procs = append(env.Procs, s)
	st.Assign(s.Slot, uint32(s.Serial))
	if v := m.srcName(int32(b1.Slot)); v != lua.LString("s.1") {
		t.Fatalf("slot %d given to s.1: %v", b1.Slot, v)
	}
	if v := m.srcName(int32(env.Procs[0].Slot)); v != lua.LString(env.Procs[0].Name) {
		t.Fatalf("slot %d: %v", env.Procs[0].Slot, v)
	}
}

// A producer loop's box:send(s) (a string, no options: sendString) and a
// receive loop's options table read from where it was (intoOpts) behave
// as the general paths do: a full mailbox, a body too large, a closed
// mailbox; an options table whose into changed, that gained a key, or
// whose one key is no longer into.
func TestSendStringAndOptsCache(t *testing.T) {
	L, _ := parentState(t, twoProcs)
	err := L.DoString(`
		local o = {into = {}}
		local first = o.into
		for i = 1, 3 do assert(box:send("s" .. i) == true) end
		for i = 1, 3 do assert(box:receive(o) == first and first.body == "s" .. i and first.seq == i) end
		local other = {}
		o.into = other
		assert(box:send("a") and box:receive(o) == other and other.body == "a" and first.body == "s3")
		o.into = first
		assert(box:send("b") and box:receive(o) == first and first.body == "b")
		o.from = "nobody"
		local ok, err = pcall(box.receive, box, o)
		assert(not ok and err:find('no process named "nobody"'), tostring(err))
		o.from = nil
		assert(box:send("c") and box:receive(o) == first and first.body == "c")
		o.into = nil
		o[("into"):sub(1, 3)] = first -- "int": not an options key
		assert(box:send("d"))
		local m = box:receive(o)
		assert(m ~= first and m.body == "d" and first.body == "c", "int is not into")
		o.int = nil
		o.into = first
		assert(box:send("e") and box:receive(o) == first and first.body == "e")
		-- full, too large, closed
		for i = 1, 4 do assert(box:send("f" .. i)) end
		local ok, err = box:send("g", {block = false})
		assert(ok == nil and err == "full", tostring(err))
		local ok, err = box:send("g")
		assert(ok == nil and err == "closed", "after ipc.run a full mailbox says closed: " .. tostring(err))
		for i = 1, 4 do assert(box:receive(o).body == "f" .. i) end
		local ok, err = pcall(box.send, box, string.rep("x", 9 * 1024 * 1024))
		assert(not ok and err:find("exceeds the 8 MiB limit"), tostring(err))
		assert(box:send("h") and box:receive(o).body == "h" and first.seq == 13)
		box:close()
		local v, err = box:send("i") -- the supervisor after ipc.run: no error
		assert(v == nil and err == "closed", tostring(err))
	`)
	if err != nil {
		t.Fatal(err)
	}
}
