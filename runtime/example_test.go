package runtime_test

import (
	"context"
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/runtime"
)

// shoutModule is a host's own Lua module: require("shout").up(s) upper-cases s.
func shoutModule(L *lua.LState) int {
	mod := L.NewTable()
	L.SetField(mod, "up", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(strings.ToUpper(L.CheckString(1))))
		return 1
	}))
	L.Push(mod)
	return 1
}

// A Go program embeds the runtime and adds a Lua module of its own. The
// program must call runtime.Child at the top of main (here, TestMain does)
// so that it can serve as the child processes of its runs.
func Example() {
	// The children are this same program: TestMain calls runtime.Child with
	// the same modules, as a host's main would.
	opts := runtime.Options{Modules: map[string]lua.LGFunction{"shout": shoutModule}}

	rep, err := runtime.RunString(context.Background(), "embedded.lua", `
local ipc = require("ipc")
local shout = require("shout")
local p = ipc.pipe{from = "speaker", to = "listener"}
ipc.process("speaker", function() p:write(shout.up("hello from a child"), "\n") end)
ipc.process("listener", function() print(p:read()) end)
`, opts)
	if err != nil {
		panic(err)
	}
	fmt.Println("ok:", rep.OK, "processes:", len(rep.Processes), "exit code:", rep.ExitCode())
	// Output:
	// [listener] HELLO FROM A CHILD
	// ok: true processes: 2 exit code: 0
}
