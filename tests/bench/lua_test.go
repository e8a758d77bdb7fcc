package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// Counts small enough for the fake runtime, which runs every process as a
// coroutine in one Lua state.
var tinySizes = sizes{
	rtt1: 20, rtt2: 20, msgs: 200, msgsPy: 200, bulk: 4 * chunk,
	addC: 100, addPy: 100, addLua: 100,
	mutexC: 100, mutexPy: 100, mutexLua: 100,
	procs: 4, procsSpawn: 4, idleMS: 1,
	ringProcs: 3, ringLaps: 2,
	sustained: 64 << 10, sustainedAt: 1 << 10,
	reads: 10, syscalls: 10,
}

// TestLuaScriptsChoreography runs every Lua cell of the table, with its own
// arguments, against testdata/fakeipc.lua: a stand-in for the ipc module
// that offers only the DESIGN.md API and finds deadlocks. It checks that
// each script declares what it uses at the top level, terminates, and
// prints the JSON line the harness reads, before the runtime can run it.
func TestLuaScriptsChoreography(t *testing.T) {
	fake, err := os.ReadFile("testdata/fakeipc.lua")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range allCases(tinySizes) {
		cmd := c.cmds[implLua]
		if cmd == nil {
			continue
		}
		key := cmd.prog + " " + strings.Join(cmd.args, " ")
		if seen[key] {
			continue
		}
		seen[key] = true
		t.Run(c.id, func(t *testing.T) {
			script := filepath.Join("lua", cmd.prog+".lua")
			out, err := runFake(string(fake), script, cmd.args)
			if err != nil {
				t.Fatalf("%s: %v\noutput:\n%s", key, err, out)
			}
			fig, err := lastJSON([]byte(out))
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if ok, _ := fig["ok"].(bool); !ok {
				t.Errorf("%s: ok is not true: %v", key, fig)
			}
			if c.memory {
				if pids, _ := fig["pids"].([]any); len(pids) == 0 && c.metric == workerRSS {
					t.Errorf("%s: no pids: %v", key, fig)
				}
				return
			}
			if _, ok := fig[c.metric.field].(float64); !ok {
				t.Errorf("%s: no number %q: %v", key, c.metric.field, fig)
			}
		})
	}
}

// runFake runs script with the fake ipc module and args in arg[1..], and
// returns what it printed.
func runFake(fake, script string, args []string) (string, error) {
	L := lua.NewState()
	defer L.Close()
	L.PreloadModule("ipc", func(L *lua.LState) int {
		fn, err := L.LoadString(fake)
		if err != nil {
			L.RaiseError("fakeipc.lua: %v", err)
		}
		L.Push(fn)
		L.Call(0, 1)
		return 1
	})
	argv := L.NewTable()
	argv.RawSetInt(0, lua.LString(script))
	for i, a := range args {
		argv.RawSetInt(i+1, lua.LString(a))
	}
	L.SetGlobal("arg", argv)
	var out strings.Builder
	L.SetGlobal("print", L.NewFunction(func(L *lua.LState) int {
		for i := 1; i <= L.GetTop(); i++ {
			if i > 1 {
				out.WriteByte('\t')
			}
			out.WriteString(L.ToStringMeta(L.Get(i)).String())
		}
		out.WriteByte('\n')
		return 0
	}))
	err := L.DoFile(script)
	return out.String(), err
}
