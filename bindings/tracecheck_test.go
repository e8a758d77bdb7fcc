package bindings

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/check"
	"github.com/ipcscript/ipcscript/trace"
)

// handTrace is a run of two processes: a and b each hold "crit" at the
// same time; a writes 1 then 2 to a register, b then reads 1 (stale);
// a sends b one message through "box".
func handTrace() *check.Trace {
	vc := func(a, b uint64) trace.VC { return trace.VC{a, b} }
	id := trace.MsgID{Src: 0, Seq: 1}
	evs := []trace.Event{
		{P: 0, Proc: "a", Seq: 1, Op: trace.OpSpan, Label: "crit", Where: "x.lua:3", Time: 10, End: 50, VC: vc(1, 0)},
		{P: 1, Proc: "b", Seq: 1, Op: trace.OpSpan, Label: "crit", Where: "x.lua:3", Time: 20, End: 60, VC: vc(0, 1)},
		{P: 0, Proc: "a", Seq: 2, Op: trace.OpSpan, Label: "reg", Where: "x.lua:7", Time: 70, End: 71, VC: vc(2, 0),
			Fields: map[string]any{"args": []any{"write", float64(1)}}},
		{P: 0, Proc: "a", Seq: 3, Op: trace.OpSpan, Label: "reg", Where: "x.lua:7", Time: 72, End: 73, VC: vc(3, 0),
			Fields: map[string]any{"args": []any{"write", float64(2)}}},
		{P: 0, Proc: "a", Seq: 4, Op: trace.OpSend, Kind: "mailbox", Object: "box", Where: "x.lua:9", Time: 74, VC: vc(4, 0), Msg: &id},
		{P: 1, Proc: "b", Seq: 2, Op: trace.OpReceive, Kind: "mailbox", Object: "box", Where: "x.lua:12", Time: 75, VC: vc(4, 2), Msg: &id},
		{P: 1, Proc: "b", Seq: 3, Op: trace.OpSpan, Label: "reg", Where: "x.lua:13", Time: 80, End: 81, VC: vc(4, 3),
			Fields: map[string]any{"args": []any{"read"}, "results": []any{float64(1)}}},
	}
	return check.New(&trace.Trace{Procs: []trace.Proc{{Name: "a"}, {Name: "b"}}, Events: evs})
}

func TestTraceChecksFromLua(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	env := &Env{Host: ParentHost(), Script: "x.lua"}
	Preload(L, env)
	L.SetGlobal("tr", TraceValue(L, handTrace(), "/tmp/x.jsonl"))
	err := L.DoString(`
		local ipc = require("ipc")
		assert(tr:count() == 7, "count " .. tr:count())
		assert(tr:count{proc = "b"} == 3)
		assert(tr:count{kind = "mailbox"} == 2)
		assert(#tr:events("crit") == 2)
		local e = tr:events{kind = "receive"}[1]
		assert(e.proc == "b" and e.where == "x.lua:12" and e.msg.src == "a" and e.msg.seq == 1, "event table")
		assert(tr.path == "/tmp/x.jsonl")

		local ok, why = tr:exclusive("crit")
		assert(ok == false and why:find("at the same time", 1, true), why)
		assert(why:find("sequenceDiagram", 1, true) and why:find("trace: /tmp/x.jsonl", 1, true), why)
		assert(tr:filter{proc = "a"}:exclusive("crit") == true)
		assert(tr:each_once("box") == true)
		assert(tr:fifo("box") == true)
		assert(tr:happens_before({kind = "send"}, {kind = "receive"}) == true)
		assert(tr:happens_before("crit", {kind = "receive"}) == true)
		assert(tr:happens_before({kind = "receive"}, "crit") == false)
		assert(tr:concurrent({proc = "a", label = "crit"}, {proc = "b", label = "crit"}) == true)
		assert(tr:bounded("crit", 2) == true)
		assert(tr:bounded("crit", 1) == false)
		assert(tr:progress("a", 0.5) == true)
		assert(#tr:races() == 0)

		local register = {
			init = function() return 0 end,
			step = function(state, input, output)
				if input[1] == "write" then return true, input[2] end
				return output == state, state
			end,
			describe = function(input, output)
				if input[1] == "write" then return "write(" .. input[2] .. ")" end
				return "read() -> " .. tostring(output)
			end,
		}
		local ok, why = tr:linearizable("reg", register)
		assert(ok == false, "a stale read passed")
		assert(why:find("then read() -> 1 by b cannot be placed", 1, true), why)

		-- ipc.expect takes a check's result as it is.
		assert(ipc.expect(tr:exclusive("crit")) == false)
		assert(ipc.expect(tr:each_once("box")) == true)
	`)
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Failed) != 1 || !strings.Contains(env.Failed[0], "exclusive: a and b were in span \"crit\" at the same time") {
		t.Fatalf("expectation failures: %q", env.Failed)
	}
}
