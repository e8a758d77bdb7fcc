package runtime_test

import (
	"strings"
	"testing"

	"github.com/ipcscript/ipcscript/runtime"
)

// A child opens its standard libraries on first use (stdlib.go); a script
// sees them as the parent does, opened at once: the same fields, the same
// globals, whichever way it reaches them first.
func TestChildLibrariesAsOpened(t *testing.T) {
	const body = `
  local out = {}
  local function put(...) local t = {} for i = 1, select("#", ...) do t[i] = tostring(select(i, ...)) end out[#out+1] = table.concat(t, " ") end
  local n = 0
  for _ in pairs(math) do n = n + 1 end
  put("math", n, rawget(table, "insert") ~= nil, getmetatable(os), type(next(coroutine)))
  put(("abc"):upper(), string.format("%03d", 7), #("xyz"):rep(3))
  string.mine = function() return "mine" end
  put(string.mine(), ("x"):mine(), require("string") == string, package.loaded.io == io)
  put(debug.getmetatable(channel), type(io.write), type(os.time()))
  local keys = {}
  for k in pairs(_G) do if k ~= "arg" and k ~= "ipc_child" then keys[#keys+1] = k end end
  table.sort(keys)
  put(table.concat(keys, ","))
  io.stdout:setvbuf("full")
  io.write(table.concat(out, "\n"), "\n")
`
	src := "local ipc = require(\"ipc\")\nlocal function show()" + body + "end\n" +
		"ipc.process(\"c\", function() show() end)\nipc.run()\nshow()\n"
	rep, out, errs := run(t, src, runtime.Options{NoPrefix: true})
	if !rep.OK {
		t.Fatalf("run failed: %s\n%s", rep.Summary(), errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 10 {
		t.Fatalf("want 5 lines from the child and 5 from the parent, got:\n%s", out)
	}
	child, parent := strings.Join(lines[:5], "\n"), strings.Join(lines[5:], "\n")
	if child != parent {
		t.Errorf("the child saw:\n%s\nthe parent:\n%s", child, parent)
	}
	if !strings.HasPrefix(lines[0], "math 31 true nil string") {
		t.Errorf("first line %q", lines[0])
	}
}
