package runtime_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/runtime"
)

// probe is native code a script calls (as a Go host's module would be):
// it attempts what Lua may not, so the kernel's part of --sandbox is
// tested, not only the Lua refusals. Each returns "ok" or the error.
func init() {
	testModules["probe"] = func(L *lua.LState) int {
		mod := L.NewTable()
		res := func(err error) lua.LValue {
			if err == nil {
				return lua.LString("ok")
			}
			return lua.LString(err.Error())
		}
		L.SetFuncs(mod, map[string]lua.LGFunction{
			"read": func(L *lua.LState) int {
				_, err := os.ReadFile(L.CheckString(1))
				L.Push(res(err))
				return 1
			},
			"write": func(L *lua.LState) int {
				L.Push(res(os.WriteFile(L.CheckString(1), []byte("x"), 0o600)))
				return 1
			},
			"remove": func(L *lua.LState) int {
				L.Push(res(os.Remove(L.CheckString(1))))
				return 1
			},
			"exec": func(L *lua.LState) int {
				L.Push(res(syscall.Exec("/bin/sh", []string{"sh", "-c", "true"}, nil)))
				return 1
			},
			"fork": func(L *lua.LState) int {
				pid, _, e := syscall.RawSyscall(syscall.SYS_FORK, 0, 0, 0)
				if e == 0 && pid == 0 {
					os.Exit(0) // the child of a fork that should not have happened
				}
				var err error
				if e != 0 {
					err = e
				}
				L.Push(res(err))
				return 1
			},
			"connect": func(L *lua.LState) int {
				c, err := net.DialTimeout("tcp", L.CheckString(1), 2*time.Second)
				if c != nil {
					c.Close()
				}
				L.Push(res(err))
				return 1
			},
		})
		L.Push(mod)
		return 1
	}
}

// The escape attempts of issue 13, each under --sandbox: the outcome is
// checked and logged (the closing note lists them).
func TestSandboxEscapeAttempts(t *testing.T) {
	if !runtime.SandboxAvailable() {
		t.Skip("neither Landlock nor seccomp on this kernel")
	}
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("x"), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, tc := range []struct {
		name, body string
		want       string // in the process's error or output
	}{
		{"shell", `os.execute("id")`, "os.execute is not allowed under --sandbox"},
		{"popen", `io.popen("id")`, "io.popen is not allowed under --sandbox"},
		{"read outside (Lua)", `io.open("/etc/passwd")`, "outside the run directory"},
		{"read outside (native)", `print(require("probe").read("/etc/passwd"))`, "permission denied"},
		{"write outside (Lua)", `io.open("VICTIM.new", "w")`, "outside the run directory"},
		{"write outside (native)", `print(require("probe").write("VICTIM.new"))`, "permission denied"},
		{"delete outside (Lua)", `os.remove("VICTIM")`, "os.remove is not allowed under --sandbox"},
		{"delete outside (native)", `print(require("probe").remove("VICTIM"))`, "permission denied"},
		{"require of a file", `require("evil")`, "loading a file is not allowed under --sandbox"},
		{"bytecode load", `load("\27LuaQ")`, "load of bytecode is not allowed under --sandbox"},
		{"execve not declared", `print(require("probe").exec())`, "operation not permitted"},
		{"network connect", `print(require("probe").connect("ADDR"))`, "permission denied"},
		{"/proc of another process", `print(require("probe").read("/proc/1/environ"))`, "permission denied"},
		{"fork bomb", `for i = 1, 100 do local r = require("probe").fork() if r ~= "ok" then print("fork", r) break end end`, "fork\toperation not permitted"},
		{"debug library", `debug.getinfo(1)`, "attempt to index a non-table object(nil)"},
	} {
		body := strings.NewReplacer("VICTIM", victim, "ADDR", ln.Addr().String()).Replace(tc.body)
		rep, out, errs := run(t, "local ipc = require(\"ipc\")\nipc.process(\"p\", function() "+body+" end)\n",
			runtime.Options{Sandbox: runtime.Sandbox{Enabled: true}, Quiet: true})
		got := out
		if p := rep.Process("p"); p != nil {
			got += " " + p.Error
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q; want %q\n%s", tc.name, got, tc.want, errs)
			continue
		}
		t.Logf("%-26s refused: %s", tc.name, strings.TrimSpace(strings.ReplaceAll(got, "\n", " ")))
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("the victim file is gone: %v", err)
	}
	if _, err := os.Stat(victim + ".new"); err == nil {
		t.Errorf("a file was written outside the run directory")
	}
}

// Limits end the process with a message that names the limit.
func TestSandboxLimits(t *testing.T) {
	if !runtime.SandboxAvailable() {
		t.Skip("neither Landlock nor seccomp on this kernel")
	}
	for _, tc := range []struct {
		name, body string
		sb         runtime.Sandbox
		want       string
	}{
		{"CPU loop", `while true do end`, runtime.Sandbox{Enabled: true, CPUSeconds: 1}, "CPU limit"},
		{"memory bomb", `local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1048576) .. i end`, runtime.Sandbox{Enabled: true, AddressSpace: 2 << 30}, "address-space limit"},
		{"output flood", `while true do print(string.rep("y", 1000)) end`, runtime.Sandbox{Enabled: true, OutputBytes: 1 << 20}, "output limit"},
	} {
		if raceOn && tc.name == "memory bomb" {
			continue // the race detector's shadow memory does not fit an address-space limit
		}
		start := time.Now()
		rep, _, _ := run(t, "local ipc = require(\"ipc\")\nipc.process(\"p\", function() "+tc.body+" end)\n",
			runtime.Options{Sandbox: tc.sb, Quiet: true})
		p := rep.Process("p")
		if p == nil || p.OK || !strings.Contains(p.Error, tc.want) {
			t.Errorf("%s: %+v; want an error naming the %s", tc.name, p, tc.want)
			continue
		}
		t.Logf("%-12s stopped after %.1fs: %s", tc.name, time.Since(start).Seconds(), p.Error)
	}
}

// A run under --sandbox says what the kernel could not enforce.
func TestSandboxSaysWhatIsNotEnforced(t *testing.T) {
	rep, _, _ := run(t, `local ipc = require("ipc") ipc.process("p", function() end)`, runtime.Options{Sandbox: runtime.Sandbox{Enabled: true}, Quiet: true})
	if !rep.OK || len(rep.NotEnforced) == 0 {
		t.Fatalf("ok=%v not enforced=%q", rep.OK, rep.NotEnforced)
	}
	t.Logf("not enforced here: %s", strings.Join(rep.NotEnforced, "; "))
	_ = strconv.Itoa
}
