package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"go.uber.org/goleak"

	"github.com/ipcscript/ipcscript/runtime"
)

// testModules are the Lua modules every test run adds; children must get
// the same ones, so TestMain passes them to runtime.Child too.
var testModules = map[string]lua.LGFunction{
	"shout": shoutModule,
	"gc": func(L *lua.LState) int {
		// gc.run() runs Go's collector and lets finalizers run.
		mod := L.NewTable()
		L.SetField(mod, "run", L.NewFunction(func(L *lua.LState) int {
			for i := 0; i < 3; i++ {
				goruntime.GC()
				time.Sleep(10 * time.Millisecond)
			}
			return 0
		}))
		L.Push(mod)
		return 1
	},
	"procs": func(L *lua.LState) int {
		// procs.max() is the child's GOMAXPROCS.
		mod := L.NewTable()
		L.SetField(mod, "max", L.NewFunction(func(L *lua.LState) int {
			L.Push(lua.LNumber(goruntime.GOMAXPROCS(0)))
			return 1
		}))
		L.Push(mod)
		return 1
	},
	"boom": func(L *lua.LState) int {
		// boom.now() panics in Go: what a bug in a binding looks like.
		mod := L.NewTable()
		L.SetField(mod, "now", L.NewFunction(func(L *lua.LState) int {
			var m map[string]int
			//lint:ignore SA5000 the point is a Go runtime panic inside a binding
			m["x"] = 1 // a nil map write: a Go runtime panic
			return 0
		}))
		L.Push(mod)
		return 1
	},
	"role": func(L *lua.LState) int {
		// role.child() -> whether this Lua state runs in a child of a run.
		mod := L.NewTable()
		L.SetField(mod, "child", L.NewFunction(func(L *lua.LState) int {
			L.Push(lua.LBool(runtime.IsChild()))
			return 1
		}))
		L.Push(mod)
		return 1
	},
	"fdlist": func(L *lua.LState) int {
		// fdlist.list() -> {"0 /dev/null", "3 socket:[123]", ...}
		mod := L.NewTable()
		L.SetField(mod, "list", L.NewFunction(func(L *lua.LState) int {
			t := L.NewTable()
			ents, _ := os.ReadDir("/proc/self/fd")
			for _, e := range ents {
				target, err := os.Readlink("/proc/self/fd/" + e.Name())
				if err != nil {
					continue // the directory's own descriptor, already closed
				}
				t.Append(lua.LString(e.Name() + " " + target))
			}
			L.Push(t)
			return 1
		}))
		L.Push(mod)
		return 1
	},
}

func TestMain(m *testing.M) {
	// A -race child that exits 0 would first sleep 1 s (GORACE
	// atexit_sleep_ms; see tests/main_test.go): children inherit this.
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	runtime.Child(runtime.Options{Modules: testModules})
	goleak.VerifyTestMain(m)
}

func run(t *testing.T, src string, opts runtime.Options) (*runtime.Report, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	opts.Stdout, opts.Stderr = &out, &errb
	opts.Modules = testModules
	// A guard against a hang, far beyond what a run takes on a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := runtime.RunString(ctx, "test.lua", src, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep, out.String(), errb.String()
}

// A child holds stdin/stdout/stderr, the runtime's control socket and
// status table, and the descriptors declared for it: with from/to, the
// writer of a pipe never holds its read end and the reader never its write
// end.
func TestChildHoldsOnlyItsDescriptors(t *testing.T) {
	rep, out, errs := run(t, `
local ipc = require("ipc")
local fdlist = require("fdlist")
local p = ipc.pipe{from = "w", to = "r"}
local other = ipc.pipe{from = "r", to = "w"}
local function show(self)
  for _, fd in ipairs(fdlist.list()) do print(fd) end
end
ipc.process("w", show)
ipc.process("r", show)
`, runtime.Options{})
	if !rep.OK {
		t.Fatalf("run failed: %s\n%s", rep.Summary(), errs)
	}
	for _, name := range []string{"w", "r"} {
		var pipes, sockets, status int
		for _, line := range strings.Split(out, "\n") {
			fd, target, ok := strings.Cut(strings.TrimPrefix(line, "["+name+"] "), " ")
			if !ok || !strings.HasPrefix(line, "["+name+"] ") || fd == "0" || fd == "1" || fd == "2" {
				continue
			}
			switch {
			case strings.HasPrefix(target, "pipe:"):
				pipes++
			case strings.HasPrefix(target, "socket:"):
				sockets++
			case target == "/memfd:ipcscript:status (deleted)":
				status++
			case strings.HasPrefix(target, "/memfd:ipcscript:"):
				// an implicit object of the run (a direct-link inbox)
			case strings.HasPrefix(target, "/sys/fs/cgroup/"):
				// the Go runtime's own (GOMAXPROCS follows the cgroup's CPU quota)
			default:
				t.Errorf("process %s holds an unexpected descriptor %s -> %s", name, fd, target)
			}
		}
		// one end of each of the two pipes, the control socket, the status table
		if pipes != 2 || sockets != 1 || status != 1 {
			t.Errorf("process %s: %d pipe ends, %d sockets, %d status tables; want 2, 1, 1\n%s", name, pipes, sockets, status, out)
		}
	}
}

// A child starts with two inboxes, its own and the supervisor's; another
// process's inbox is handed over when it first sends there (launch.go),
// and only that one: in a ring of 6, each member ends up holding its own,
// the supervisor's and the next member's, and every token goes round.
func TestChildGetsPeerInboxesOnFirstSend(t *testing.T) {
	rep, out, errs := run(t, `
local ipc = require("ipc")
local fdlist = require("fdlist")
local n = 6
local function inboxes()
  local names = {}
  for _, fd in ipairs(fdlist.list()) do
    local owner = fd:match('queue inbox of "([^"]+)"')
    if owner then names[#names + 1] = owner end
  end
  table.sort(names)
  return table.concat(names, ",")
end
ipc.process("w", {count = n}, function(self)
  local before = inboxes()
  local nextNode = "w." .. (self.index % n + 1)
  ipc.send(nextNode, self.index)
  local got = ipc.receive().body
  print(string.format("before=%s after=%s got=%d", before, inboxes(), got))
end)
`, runtime.Options{})
	if !rep.OK {
		t.Fatalf("run failed: %s\n%s", rep.Summary(), errs)
	}
	for i := 1; i <= 6; i++ {
		next, prev := i%6+1, (i+4)%6+1
		mine := []string{"main", fmt.Sprintf("w.%d", i)}
		slices.Sort(mine)
		both := append(slices.Clone(mine), fmt.Sprintf("w.%d", next))
		slices.Sort(both)
		want := fmt.Sprintf("[w.%d] before=%s after=%s got=%d", i, strings.Join(mine, ","), strings.Join(both, ","), prev)
		if !strings.Contains(out, want+"\n") {
			t.Errorf("want the line %q in:\n%s", want, out)
		}
	}
}

// A script that declares processes but never calls ipc.run() runs them.
func TestImplicitRun(t *testing.T) {
	rep, out, _ := run(t, `
local ipc = require("ipc")
ipc.process("a", function() print("ran") end)
`, runtime.Options{})
	if !rep.OK || !strings.Contains(out, "[a] ran") {
		t.Fatalf("ok=%v out=%q", rep.OK, out)
	}
}

// A child whose declarations differ from the parent's fails with a message
// naming the first differing declaration.
func TestDeclarationsMustMatch(t *testing.T) {
	rep, _, errs := run(t, `
local ipc = require("ipc")
local name = require("role").child() and "child-side" or "parent-side"
ipc.process("a", function() end)
ipc.pipe{from = "a", to = name == "parent-side" and "a" or "a"}
ipc.process(name == "parent-side" and "b" or "c", function() end)
`, runtime.Options{})
	if rep.OK {
		t.Fatal("run succeeded; want a declaration mismatch")
	}
	a := rep.Process("a")
	if a == nil || !strings.Contains(a.Error, `declaration 3 is process "b"`) || !strings.Contains(a.Error, `process "c"`) {
		t.Fatalf("process a error = %q\n%s", a.Error, errs)
	}
}

// An expectation that fails in a child fails the run, with its line.
func TestExpectFailsTheRun(t *testing.T) {
	rep, _, _ := run(t, `
local ipc = require("ipc")
ipc.process("a", function() ipc.expect(1 + 1 == 3, "arithmetic") end)
`, runtime.Options{})
	if rep.OK || rep.ExitCode() != runtime.ExitFailed {
		t.Fatalf("ok=%v code=%d", rep.OK, rep.ExitCode())
	}
	if len(rep.Failed) != 1 || rep.Failed[0] != "a: test.lua:3: arithmetic" {
		t.Fatalf("failed = %q", rep.Failed)
	}
}

// Objects declared inside a process body are refused, naming the line.
func TestDeclareInsideBody(t *testing.T) {
	rep, _, _ := run(t, `
local ipc = require("ipc")
ipc.process("a", function()
  ipc.pipe()
end)
`, runtime.Options{})
	a := rep.Process("a")
	if rep.OK || a == nil || !strings.Contains(a.Error, "test.lua:4:") || !strings.Contains(a.Error, "top level") {
		t.Fatalf("report: %+v", rep.Processes)
	}
}

// fail_fast stops the others as soon as one fails.
func TestFailFast(t *testing.T) {
	// slow would sleep past run's context: only fail_fast's stop (a
	// SIGTERM) ends it, whatever the machine's speed.
	rep, _, _ := run(t, `
local ipc = require("ipc")
ipc.process("slow", function() ipc.sleep(3600) end)
ipc.process("bad", function() error("boom") end)
ipc.run{fail_fast = true}
`, runtime.Options{})
	if rep.OK || rep.TimedOut || rep.Signal != "" {
		t.Fatalf("ok=%v timed out=%v interrupted by %q", rep.OK, rep.TimedOut, rep.Signal)
	}
	if s := rep.Process("slow"); s == nil || s.Signal != "SIGTERM" {
		t.Fatalf("slow: %+v", s)
	}
}

// A deadlock the script expects is a success; exit code 0.
func TestExpectedTimeout(t *testing.T) {
	rep, _, _ := run(t, `
local ipc = require("ipc")
ipc.process("sleeper", function() ipc.sleep(3600) end)
ipc.run{timeout = 0.5, expect = "timeout"}
`, runtime.Options{})
	if !rep.OK || !rep.TimedOut || rep.ExitCode() != 0 {
		t.Fatalf("ok=%v timedout=%v code=%d", rep.OK, rep.TimedOut, rep.ExitCode())
	}
}

// A descriptor the child closes must not be closed again by a finalizer
// once its number is reused: the script source's memfd was, and the number
// went to the Go runtime's epoll descriptor, which a socket read then
// found closed ("netpoll failed").
func TestNoDoubleCloseAfterGC(t *testing.T) {
	rep, out, errs := run(t, `
local ipc = require("ipc")
local gc = require("gc")
local l = ipc.listen("tcp", "127.0.0.1:0")
ipc.process("server", function()
  local c = l:accept()
  gc.run()
  print("server got " .. c:read())
end)
ipc.process("client", function()
  local c = ipc.connect("tcp", l.address)
  gc.run()
  c:write("hello\n")
end)
`, runtime.Options{})
	if !rep.OK || !strings.Contains(out, "[server] server got hello") {
		t.Fatalf("ok=%v\n%s\n%s", rep.OK, out, errs)
	}
}

// Children run with GOMAXPROCS=1 unless the user set GOMAXPROCS, and the
// script never sees the variable the supervisor added.
func TestChildGOMAXPROCS(t *testing.T) {
	const src = `
local ipc = require("ipc")
ipc.process("a", function()
  print("procs=" .. require("procs").max() .. " env=" .. tostring(os.getenv("GOMAXPROCS")) .. " unset=" .. tostring(os.getenv("IPCSCRIPT_UNSET")))
end)
`
	if v, ok := os.LookupEnv("GOMAXPROCS"); ok {
		os.Unsetenv("GOMAXPROCS")
		defer os.Setenv("GOMAXPROCS", v)
	}
	rep, out, _ := run(t, src, runtime.Options{})
	if !rep.OK || !strings.Contains(out, "[a] procs=1 env=nil unset=nil") {
		t.Fatalf("without GOMAXPROCS: ok=%v out=%q", rep.OK, out)
	}
	t.Setenv("GOMAXPROCS", "2")
	rep, out, _ = run(t, src, runtime.Options{})
	if !rep.OK || !strings.Contains(out, "[a] procs=2 env=2 unset=nil") {
		t.Fatalf("with GOMAXPROCS=2: ok=%v out=%q", rep.OK, out)
	}
}

// The declared processes of a run are started several at a time
// (launchAll): each still gets its own manifest, descriptors and output,
// every pid is known before a body runs, and every message arrives.
func TestManyProcessesStartTogether(t *testing.T) {
	const n = 24
	rep, out, errs := run(t, `
local ipc = require("ipc")
local n = 24
ipc.process("w", {count = n}, function(self)
  ipc.send("sink", {from = self.index, pid = self.pid})
  print("w " .. self.index)
end)
ipc.process("sink", function()
  local seen, count = {}, 0
  for _ = 1, n do
    local m = ipc.receive()
    ipc.expect(not seen[m.body.from], "twice from " .. tostring(m.body.from))
    ipc.expect(m.body.pid ~= nil and m.body.pid > 0, "no pid for w." .. tostring(m.body.from))
    seen[m.body.from], count = true, count + 1
  end
  ipc.expect(count == n, "received " .. count)
end)
`, runtime.Options{NoPrefix: true})
	if !rep.OK {
		t.Fatalf("%s: %v\n%s", rep.Summary(), rep.Failed, errs)
	}
	pids := map[int]bool{}
	for _, p := range rep.Processes {
		if p.Pid <= 0 || pids[p.Pid] {
			t.Errorf("process %s: pid %d (missing or twice)", p.Name, p.Pid)
		}
		pids[p.Pid] = true
	}
	if len(rep.Processes) != n+1 {
		t.Errorf("%d processes in the report, want %d", len(rep.Processes), n+1)
	}
	for i := 1; i <= n; i++ {
		if !strings.Contains(out, fmt.Sprintf("w %d\n", i)) {
			t.Errorf("no output line from w.%d in:\n%s", i, out)
		}
	}
}

// The supervisor waits for its children without a thread each (awaitExit:
// a pidfd read through the netpoller): with 32 children alive at once it
// runs a handful of threads. cmd.Wait alone held one thread per live
// child in waitid (39 threads for 32 children).
func TestWaitingHoldsNoThreadPerChild(t *testing.T) {
	const n = 32
	// The children live until the test has looked (the file), however
	// long a loaded machine takes to start all of them.
	release := filepath.Join(t.TempDir(), "release")
	defer os.WriteFile(release, nil, 0o600) // on every path out
	done := make(chan *runtime.Report, 1)
	go func() {
		src := fmt.Sprintf(`
local ipc = require("ipc")
ipc.process("s", {count = %d}, function()
  while not io.open(%q) do ipc.sleep(0.02) end
end)
`, n, release)
		var out bytes.Buffer
		rep, err := runtime.RunString(context.Background(), "test.lua", src, runtime.Options{Stdout: &out, Stderr: &out, Modules: testModules})
		if err != nil {
			rep = &runtime.Report{Error: err.Error()}
		}
		done <- rep
	}()
	most := 0
	for {
		select {
		case rep := <-done:
			if !rep.OK {
				t.Fatalf("run failed: %s", rep.Summary())
			}
			t.Fatalf("the run ended before its %d children were seen alive together (most seen: %d)", n, most)
		case <-time.After(10 * time.Millisecond):
		}
		live := liveChildren(t)
		most = max(most, live)
		if live < n {
			continue
		}
		threads := threadCount(t)
		if threads > n/2 {
			t.Errorf("%d threads in the supervisor with %d children alive: a thread per child?", threads, live)
		}
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if rep := <-done; !rep.OK {
			t.Fatalf("run failed: %s", rep.Summary())
		}
		return
	}
}

// liveChildren counts the processes whose parent is this one.
func liveChildren(t *testing.T) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	me := fmt.Sprintf("PPid:\t%d\n", os.Getpid())
	n := 0
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err == nil && strings.Contains(string(b), me) {
			n++
		}
	}
	return n
}

// threadCount is this process's number of threads.
func threadCount(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}
