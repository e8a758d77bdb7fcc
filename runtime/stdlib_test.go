package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
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
	lines := childAsParent(t, body)
	if len(lines) != 5 {
		t.Fatalf("want 5 lines from the child and 5 from the parent, got:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.HasPrefix(lines[0], "math 31 true nil string") {
		t.Errorf("first line %q", lines[0])
	}
}

// A child opens package on first use, and require("ipc") before that
// does not open it (stdlib.go): whenever a script then looks, package is
// what the parent's is, opened at start.
func TestChildPackageAsOpened(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pkgmod.lua"), []byte("return {x = 42, name = ...}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	body := `
  local out = {}
  local function put(...) local t = {} for i = 1, select("#", ...) do t[i] = tostring(select(i, ...)) end out[#out+1] = table.concat(t, " ") end
  local function keys(t) local ks = {} for k in pairs(t) do ks[#ks+1] = tostring(k) end table.sort(ks) return table.concat(ks, ",") end
  local function order(t) local ks = {} for k in pairs(t) do ks[#ks+1] = tostring(k) end return table.concat(ks, ",") end
  os.setenv("LUA_PATH", "/nowhere/?.lua") -- package.path is LUA_PATH at start
  put(getmetatable(package), type(package.preload.ipc), type(package.preload.fdlist), package.loaded.package, package.loaded.ipc == ipc, require("ipc") == ipc)
  put(keys(package), #package.loaders, type(package.loaders[1]), type(package.loaders[2]))
  put(package.path, package.cpath == "", package.config == "/\n;\n?\n!\n-\n")
  put(order(package.loaded))
  put((select(2, pcall(require, "no_such_module"))))
  local p = package
  package = nil
  put(pcall(function() return type(require("ipc")) end))
  put(pcall(function() return type(require("string")) end))
  package = p
  p.path = ` + "%q" + ` .. "/?.lua"
  local m = require("pkgmod")
  put(m.x, m.name, package.loaded.pkgmod == m, type(require("fdlist")))
  put(order(package.loaded))
  io.write(table.concat(out, "\n"), "\n")
`
	body = fmt.Sprintf(body, dir)
	if lines := childAsParent(t, body); len(lines) < 10 {
		t.Fatalf("want 10 lines from the child and 10 from the parent, got:\n%s", strings.Join(lines, "\n"))
	}
}

// childAsParent runs body, a function's body that writes lines, in a
// child and then in the parent, fails t unless both wrote the same lines,
// and returns the child's.
func childAsParent(t *testing.T, body string) []string {
	t.Helper()
	src := "local ipc = require(\"ipc\")\nlocal function show()" + body + "end\n" +
		"ipc.process(\"c\", function() show() end)\nipc.run()\nshow()\n"
	rep, out, errs := run(t, src, runtime.Options{NoPrefix: true})
	if !rep.OK {
		t.Fatalf("run failed: %s\n%s", rep.Summary(), errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines)%2 != 0 {
		t.Fatalf("want as many lines from the child as from the parent, got:\n%s", out)
	}
	half := len(lines) / 2
	if child, parent := strings.Join(lines[:half], "\n"), strings.Join(lines[half:], "\n"); child != parent {
		t.Errorf("the child saw:\n%s\nthe parent:\n%s", child, parent)
	}
	return lines[:half]
}

// A library a child has not touched yet is sent as it is once opened, as
// the parent sends it: refused, for the functions in it (an unopened
// library table is empty until first use, and went as {}).
func TestChildSendsUnopenedLibraryAsOpened(t *testing.T) {
	src := `local ipc = require("ipc")
local box = ipc.mailbox("b", {capacity = 4})
local function try(who)
  local ok, err = pcall(function() return box:send(string) end)
  print(who, ok, (tostring(err):match("function") and "function refused") or tostring(err))
end
ipc.process("c", function() try("child") end)
ipc.run()
try("parent")
`
	rep, out, errs := run(t, src, runtime.Options{NoPrefix: true})
	if !rep.OK {
		t.Fatalf("run failed: %s\n%s", rep.Summary(), errs)
	}
	if want := "child\tfalse\tfunction refused\nparent\tfalse\tfunction refused\n"; out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}
