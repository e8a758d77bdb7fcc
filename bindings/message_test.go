package bindings

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// parentState runs script's declarations in a parent-mode Lua state,
// creates the inboxes as ipc.run would, and leaves the state as the
// supervisor's after ipc.run(): message passing allowed, nothing running.
func parentState(t testing.TB, script string) (*lua.LState, *Env) {
	t.Helper()
	L := lua.NewState()
	env := &Env{Host: ParentHost(), Script: "test.lua"}
	Preload(L, env)
	if err := L.DoString(script); err != nil {
		t.Fatal(err)
	}
	if err := env.PrepareLaunch(); err != nil {
		t.Fatal(err)
	}
	env.Running()
	t.Cleanup(func() {
		for _, d := range append(env.Decls, env.Implicit...) {
			if r, ok := d.Object.(Releaser); ok {
				r.Release()
			}
		}
		L.Close()
	})
	return L, env
}

const twoProcs = `
ipc = require("ipc")
box = ipc.mailbox("jobs", {capacity = 4})
ipc.process("a", function() end)
ipc.process("b", {count = 2}, function() end)
ipc.link("a", "b", {capacity = 2})
`

func TestMessageTable(t *testing.T) {
	L, _ := parentState(t, twoProcs)
	err := L.DoString(`
		local before = ipc.now()
		assert(ipc.send("main", {x = 1}, {type = "t"}) == true)
		assert(ipc.send("main", "second"))
		local m = ipc.receive({type = "t"})
		assert(m.type == "t" and m.body.x == 1 and m.src == "main" and m.dst == "main", "header")
		assert(m.len == 4 and m.seq == 1 and type(m.time) == "number", "len/seq/time")
		assert(before <= m.time and m.time <= ipc.now(), "time is ipc.now() seconds, taken at the send")
		local m2 = ipc.receive()
		assert(m2.type == nil and m2.body == "second" and m2.seq == 2)
		local v, err = ipc.receive({block = false})
		assert(v == nil and err == "empty", tostring(err))
		-- the supervisor after ipc.run: a wait that could never end says closed
		local v, err = ipc.receive()
		assert(v == nil and err == "closed", tostring(err))
		local v, err = ipc.receive({timeout = 5})
		assert(v == nil and err == "closed", tostring(err))

		for i = 1, 4 do assert(box:send(i, {type = "n"})) end
		local ok, err = box:send(5, {block = false})
		assert(ok == nil and err == "full", tostring(err))
		local ok, err = box:send(5)
		assert(ok == nil and err == "closed", tostring(err))
		local m = box:receive()
		assert(m.body == 1 and m.dst == "jobs" and m.src == "main" and box.name == "jobs" and box.capacity == 4)
		local src, m, err = ipc.select({ipc.inbox, box})
		assert(src == box and m.body == 2 and err == nil, tostring(err))
		box:close()
		assert(box:receive().body == 3 and box:receive().body == 4)
		local v, err = box:receive()
		assert(v == nil and err == "closed", tostring(err))
		local src, v, err = ipc.select({box})
		assert(src == box and v == nil and err == "closed")
		local src, v, err = ipc.select({ipc.inbox}, {block = false})
		assert(src == nil and v == nil and err == "empty")
	`)
	if err != nil {
		t.Fatal(err)
	}
}

func TestMessageErrors(t *testing.T) {
	L, _ := parentState(t, twoProcs)
	for _, c := range []struct{ code, want string }{
		{`ipc.send("nobody", 1)`, `ipc.send: no process named "nobody" (declared: a, b)`},
		{`ipc.send("b", 1)`, `ipc.send: "b" is a group of 2 processes: name one instance, "b.1" .. "b.2"`},
		{`ipc.receive({from = "zed"})`, `ipc.receive: no process named "zed"`},
		{`ipc.send("a", {f = print})`, `ipc.send to "a": body.f: a function cannot be sent`},
		{`box:send({1, {2, box}})`, `mailbox "jobs": send: body[2][2]: mailbox "jobs" (an object`},
		{`ipc.send("a", 1, {type = 7})`, `type must be a string, got number`},
		{`box:send(1, {keep = "yes"})`, `keep must be a boolean, got string "yes"`},
		{`ipc.receive({into = 5})`, `ipc.receive: into must be a table, got number`},
		{`box:receive({block = 1})`, `block must be a boolean, got number`},
		{`ipc.send("a", 1, {timeout = "1s"})`, `timeout must be a number of seconds, got string "1s"`},
		{`ipc.select({box, 42})`, `ipc.select: item 2 is a number: select waits on mailboxes`},
		{`ipc.select({})`, `ipc.select: the list is empty`},
		{`ipc.send("main", string.rep("x", 9 * 1024 * 1024))`, `ipc.send to "main": message of 9.0 MiB (9437189 bytes) exceeds the 8 MiB limit`},
	} {
		err := L.DoString(c.code)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant ...%s...", c.code, err, c.want)
		}
	}
	// Nothing was half-sent.
	if err := L.DoString(`local v, err = ipc.receive({block = false}); assert(err == "empty", "left: " .. tostring(v))`); err != nil {
		t.Fatal(err)
	}
}

func TestMessageTopLevel(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	env := &Env{Host: ParentHost(), Script: "test.lua"}
	Preload(L, env)
	err := L.DoString(`local ipc = require("ipc"); local b = ipc.mailbox("x"); b:send(1)`)
	if err == nil || !strings.Contains(err.Error(), "not at the top level (top-level code runs in every process)") {
		t.Fatalf("top-level send: %v", err)
	}
	for _, d := range env.Decls {
		if r, ok := d.Object.(Releaser); ok {
			r.Release()
		}
	}
}

// BenchmarkMailbox is one process's cost of a send and a receive of a
// 64-byte string through a mailbox: encode, queue, decode, message table.
func BenchmarkMailbox(b *testing.B) {
	benchSendReceive(b, `ipc = require("ipc"); box = ipc.mailbox("m")`, `
		local n, body = ...
		local box = box
		for _ = 1, n do
			box:send(body)
			local m = box:receive()
		end`)
}

// BenchmarkDirect is the same through ipc.send / ipc.receive.
func BenchmarkDirect(b *testing.B) {
	benchSendReceive(b, `ipc = require("ipc"); ipc.process("p", function() end)`, `
		local n, body = ...
		local send, receive = ipc.send, ipc.receive
		for _ = 1, n do
			send("main", body)
			local m = receive()
		end`)
}

// benchSendReceive runs loop(b.N, a 64-byte body) in a parent state set up
// by setup.
func benchSendReceive(b *testing.B, setup, loop string) {
	L, _ := parentState(b, setup)
	runBenchLoop(b, L, loop)
}

// runBenchLoop runs loop(b.N, a 64-byte body) in L, timed.
func runBenchLoop(b *testing.B, L *lua.LState, loop string) {
	fn, err := L.LoadString(loop)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	L.Push(fn)
	L.Push(lua.LNumber(b.N))
	L.Push(lua.LString(strings.Repeat("x", 64)))
	if err := L.PCall(2, 0, nil); err != nil {
		b.Fatal(err)
	}
}

// Message tables behave as tables built by Lua: pairs, new keys, removed
// keys, and one message's changes never show in another.
func TestMessageTableIsATable(t *testing.T) {
	for _, fast := range []bool{true, false} {
		saved := msgTablesReady()
		fastTables = fast && saved
		L, _ := parentState(t, twoProcs)
		err := L.DoString(`
			local function keys(t)
				local ks = {}
				for k in pairs(t) do ks[#ks + 1] = k end
				table.sort(ks)
				return table.concat(ks, " ")
			end
			ipc.send("main", "x", {type = "a"})
			ipc.send("main", nil)
			ipc.send("main", {1, 2})
			local m1, m2, m3 = ipc.receive(), ipc.receive(), ipc.receive()
			assert(keys(m1) == "body dst len seq src time type", keys(m1))
			assert(keys(m2) == "dst len seq src time", keys(m2))
			m1.extra = true
			m1.type = nil
			m2.type = "late"
			assert(keys(m1) == "body dst extra len seq src time", keys(m1))
			assert(keys(m2) == "dst len seq src time type", keys(m2))
			assert(keys(m3) == "body dst len seq src time", keys(m3))
			assert(next(m3) ~= nil and m3.body[2] == 2)
			for i = 1, 20 do m3["k" .. i] = i end
			assert(select(2, keys(m3):gsub("k", "")) == 20)
			assert(keys(m1) == "body dst extra len seq src time", keys(m1))
		`)
		fastTables = saved
		if err != nil {
			t.Fatalf("fast=%v: %v", fast, err)
		}
	}
}

func TestFastTablesEnabled(t *testing.T) {
	if !msgTablesReady() {
		t.Error("gopher-lua's LTable layout differs from ltable (msgtable.go): message tables are built the slow way; update ltable")
	}
}

// Messages alike in type, sender, receiver and length share a template
// for their tables (msgTemplate): each table is still its own.
func TestMessageTablesAlikeAreIndependent(t *testing.T) {
	L, _ := parentState(t, twoProcs)
	err := L.DoString(`
		local function keys(t)
			local ks = {}
			for k, v in pairs(t) do ks[#ks + 1] = k .. "=" .. tostring(v) end
			table.sort(ks)
			return table.concat(ks, " ")
		end
		for i = 1, 6 do ipc.send("main", "b" .. i, {type = "t"}) end
		for i = 1, 3 do ipc.send("main", nil) end
		local m = {}
		for i = 1, 9 do m[i] = ipc.receive() end
		for i = 1, 6 do
			assert(m[i].type == "t" and m[i].body == "b" .. i and m[i].len == m[1].len, tostring(i))
		end
		for i = 7, 9 do assert(m[i].type == nil and m[i].body == nil and m[i].len == m[7].len, tostring(i)) end
		m[3].type = "changed"
		m[4].body = nil
		m[4].src = nil
		m[5].extra = 1
		m[8].type = "late"
		for i = 1, 9 do
			local want = "dst=main len=" .. m[i].len .. " seq=" .. m[i].seq .. " src=main time=" .. tostring(m[i].time)
			if i <= 6 then want = "body=b" .. i .. " " .. want .. " type=t" end
			if i == 3 then want = want:gsub("type=t", "type=changed") end
			if i == 4 then want = want:gsub("body=b4 ", ""):gsub(" src=main", "") end
			if i == 5 then want = want:gsub("dst=main", "dst=main extra=1") end
			if i == 8 then want = want .. " type=late" end
			assert(keys(m[i]) == want, i .. ": " .. keys(m[i]) .. " ~= " .. want)
		end
		for i = 1, 6 do ipc.send("main", "again", {type = "t"}) end
		for i = 1, 6 do
			local n = ipc.receive()
			assert(n.type == "t" and n.body == "again" and n.extra == nil and rawget(n, "extra") == nil, tostring(i))
		end
	`)
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkMessageTable: building a received message's table, for a
// stream of messages alike (the template path) and for messages that
// differ in length each time (the general path).
func BenchmarkMessageTable(b *testing.B) {
	v := [msgFields]lua.LValue{lua.LNil, lua.LString(strings.Repeat("x", 64)), lua.LString("a"), lua.LString("b"), boxInt(66), lua.LNumber(5000), lua.LNumber(1.5)}
	b.Run("alike", func(b *testing.B) {
		var tm msgTemplate
		b.ReportAllocs()
		for b.Loop() {
			_ = tm.newMessageTable(&v)
		}
	})
	b.Run("varied", func(b *testing.B) {
		var tm msgTemplate
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			n++
			v[4] = boxInt(n % 512)
			_ = tm.newMessageTable(&v)
		}
	})
}
