package bindings

import (
	"fmt"
	"maps"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// msgTableScript runs the same operations on a table and returns what a
// script can see of it after each: every key and value pairs() gives
// (sorted), that next() from each key goes on without error and visits
// each key once, #t, what ipairs gives, and rawget of every message field.
// The operations: set and clear message fields, add string keys (enough to
// grow every map the table has), integer keys (the array part) and table
// keys (the general dict), remove them again, and collect garbage.
const msgTableScript = `
local t, seed = ...
local fields = {"type", "body", "src", "dst", "len", "seq", "time"}
local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n + 1 end
local tkeys = {}
local log = {}
local function look(step)
  local seen, count, ks = {}, 0, {}
  for k, v in pairs(t) do
    local name = type(k) == "table" and ("tkey" .. tkeys[k]) or (type(k) .. ":" .. tostring(k))
    assert(not seen[name], "pairs gave " .. name .. " twice")
    seen[name] = true
    count = count + 1
    local vs = type(v) == "table" and "table" or tostring(v)
    ks[#ks + 1] = name .. "=" .. vs
    next(t, k) -- continues from every key
  end
  table.sort(ks)
  local n, k = 0, next(t)
  while k ~= nil do n = n + 1; k = next(t, k) end
  assert(n == count, "next visited " .. n .. " keys, pairs " .. count)
  local ip = {}
  for i, v in ipairs(t) do ip[#ip + 1] = i .. "=" .. tostring(v) end
  local raw = {}
  for _, f in ipairs(fields) do raw[#raw + 1] = tostring(rawget(t, f) ~= nil) end
  log[#log + 1] = step .. ": " .. table.concat(ks, " ") .. " | #" .. #t .. " | " .. table.concat(ip, " ") .. " | " .. table.concat(raw, ",")
end
look(0)
for step = 1, 30 do
  local op = step == 15 and 9 or rnd(8)
  if op == 1 then t[fields[rnd(7)]] = "v" .. step
  elseif op == 2 then t[fields[rnd(7)]] = nil
  elseif op == 3 then for i = 1, rnd(12) do t["k" .. step .. "_" .. i] = i end
  elseif op == 4 then t["k" .. rnd(step) .. "_1"] = nil
  elseif op == 5 then t[#t + 1] = step
  elseif op == 6 then t[rnd(4)] = nil
  elseif op == 7 then local k = {}; tkeys[k] = step; t[k] = step
  elseif op == 8 then for k in pairs(tkeys) do if t[k] ~= nil and rnd(2) == 1 then t[k] = nil end end
  else collectgarbage() end
  if step % 10 == 0 then look(step) end
end
look(31)
return table.concat(log, "\n")
`

// Message tables built by newMessageTable behave as tables gopher-lua
// builds with RawSetString, whatever fields are nil and whichever path
// built them (the general one, the one that builds a template, the one
// that clones it): the same operations give the same contents, pairs,
// next, # and ipairs, through growth and garbage collection. And building
// and changing them never writes what they share (the key list, the
// templates).
func TestMessageTableBehavesAsATable(t *testing.T) {
	if !msgTablesReady() {
		t.Skip("gopher-lua's LTable layout differs: message tables are built with RawSetString (TestFastTablesEnabled fails)")
	}
	L := lua.NewState()
	defer L.Close()
	fn, err := L.LoadString(msgTableScript)
	if err != nil {
		t.Fatal(err)
	}
	run := func(tb *lua.LTable, seed int) string {
		L.Push(fn)
		L.Push(tb)
		L.Push(lua.LNumber(seed))
		if err := L.PCall(2, 1, nil); err != nil {
			t.Fatal(err)
		}
		defer L.Pop(1)
		return L.Get(-1).String()
	}
	values := [msgFields]lua.LValue{lua.LString("t"), lua.LString("body"), lua.LString("a"), lua.LString("b"), boxInt(4), boxInt(17), lua.LNumber(1.25)}
	keysBefore := append([]lua.LValue(nil), msgKeys...)
	posBefore, strBefore := maps.Clone(msgKeyPos), maps.Clone(msgStrTemplate)
	shapes := 0
	for shape := range 1 << msgFields {
		var v [msgFields]lua.LValue
		for i := range v {
			v[i] = values[i]
			if shape&(1<<i) != 0 {
				v[i] = lua.LNil
			}
		}
		var tm msgTemplate
		built := []*lua.LTable{tm.newMessageTable(&v), tm.newMessageTable(&v), tm.newMessageTable(&v)}
		if shape == 0 && tm.strdict == nil {
			t.Fatal("three messages alike did not make a template")
		}
		var tmplBefore map[string]lua.LValue
		if tm.strdict != nil {
			tmplBefore = maps.Clone(tm.strdict)
		}
		for path, fast := range built {
			ref := L.NewTable()
			for i, k := range msgKeyNames {
				if v[i] != lua.LNil {
					ref.RawSetString(k, v[i])
				}
			}
			seed := shape*3 + path + 1
			want := run(ref, seed)
			got := run(fast, seed)
			if got != want {
				t.Fatalf("shape %07b, path %d: the message table and a plain one differ:\n%s", shape, path, firstDiff(got, want))
			}
			shapes++
		}
		if shape%32 == 0 {
			goruntime.GC() // the tables built so far are garbage now
		}
		if tmplBefore != nil && !maps.Equal(tm.strdict, tmplBefore) {
			t.Fatalf("shape %07b: changing the tables wrote their template", shape)
		}
	}
	if len(msgKeys) != msgFields || cap(msgKeys) != msgFields || !slices.Equal(msgKeys, keysBefore) ||
		!maps.Equal(msgKeyPos, posBefore) || !maps.Equal(msgStrTemplate, strBefore) {
		t.Fatal("changing message tables wrote the key list or the templates they share")
	}
	t.Logf("%d tables (%d shapes x 3 paths) behaved as plain ones", shapes, 1<<msgFields)
}

// firstDiff shows the first line where two logs differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("message table: %s\nplain table:   %s", g[i], w[i])
		}
	}
	return fmt.Sprintf("%d lines against %d", len(g), len(w))
}
