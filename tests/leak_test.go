package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLeak runs a script that uses every kind of object (FIFOs in the run
// directory and at a given path, an anonymous and a public message queue,
// a semaphore, a mutex, shared memory, tcp, unix and udp sockets, a pipe)
// and ends in every way a run can end: normally, with a failing process,
// with an error in the supervisor's script, by --timeout, by SIGINT, and by
// SIGKILL of the supervisor (then the next run cleans up after it). After
// each, /dev/shm, /dev/mqueue and /tmp hold nothing of ours that they did
// not hold before, and no process of the run is alive.
func TestLeak(t *testing.T) {
	mqueueMounted(t)
	for _, tc := range []struct {
		mode string
		args []string
		code int
	}{
		{"ok", nil, 0},
		{"error", nil, 1},
		{"mainerror", nil, 65}, // an error before ipc.run(): the script is wrong
		// The timeout must fall after "ready" (every object used), which
		// takes well under a second; 10 s leaves room for a busy machine.
		{"timeout", []string{"--timeout", "10"}, 124},
		{"sigint", nil, 130},
		{"killed", nil, -1},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			before := snapshot()
			given := filepath.Join(t.TempDir(), "given.fifo")
			// Process names carry a tag of this test binary and case, so
			// that another run of this test on the machine is not mistaken
			// for ours.
			tag := fmt.Sprintf("leak%d%s", os.Getpid(), tc.mode)
			args := append(append([]string{}, tc.args...), "every.lua", tc.mode, given, tag)
			cmd := ipcscript(args...)
			cmd.Dir = writeScript(t, "every.lua", everyKind)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			sc := startLines(t, cmd)
			var runDir string
			for sc.Scan() { // "[user] ready <fifo path>" once every object has been used
				if _, rest, ok := strings.Cut(sc.Text(), "ready "); ok {
					runDir = filepath.Dir(rest)
					break
				}
			}
			switch tc.mode {
			case "sigint":
				cmd.Process.Signal(os.Interrupt)
			case "killed":
				cmd.Process.Signal(syscall.SIGKILL)
			}
			for sc.Scan() { // drain: the run ends when its output does
			}
			err := cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			if code != tc.code {
				t.Fatalf("exit code %d (%v), want %d\nstderr:\n%s", code, err, tc.code, stderr.String())
			}
			if tc.mode != "mainerror" && runDir == "" {
				t.Fatalf("the script never said it was ready\nstderr:\n%s", stderr.String())
			}
			if tc.mode == "killed" {
				// The supervisor could not clean up; its children died with
				// it. The next run removes what it left in /tmp and
				// /dev/mqueue (a FIFO at a path the script chose is not
				// recorded anywhere and stays: remove it here).
				// Any run removes what dead runs left, so on a machine where
				// other runs start (other tests, other users) one of them may
				// have cleaned it already: what counts is that nothing is
				// left after the next run (leftSince below).
				if _, err := os.Stat(runDir); err != nil {
					t.Logf("%s is gone already (another run cleaned it?): %v", runDir, err)
				}
				os.Remove(given)
				waitNoProcs(t, "["+tag+"_")
				next := ipcscript("--no-prefix", "empty.lua")
				next.Dir = writeScript(t, "empty.lua", `local ipc = require("ipc") ipc.process("x", function() end)`)
				if b, err := next.CombinedOutput(); err != nil {
					t.Fatalf("next run: %v\n%s", err, b)
				}
			}
			waitNoProcs(t, "["+tag+"_")
			if _, err := os.Lstat(given); !os.IsNotExist(err) {
				t.Errorf("the FIFO at the given path %s is still there (%v)", given, err)
			}
			if left := leftSince(before); len(left) > 0 {
				t.Errorf("left behind: %s\nstderr:\n%s", strings.Join(left, ", "), stderr.String())
			}
		})
	}
}

// everyKind declares one object of every kind, uses each in two processes,
// says "ready", then ends as arg[1] says.
const everyKind = `
local ipc = require("ipc")
local mode, given, tag = arg[1], arg[2], arg[3]
local user, other = tag .. "_user", tag .. "_other"
local f = ipc.fifo("jobs")
local g = ipc.fifo("given", {path = given})
local q = ipc.mqueue("anon", {capacity = 2, msgsize = 64})
local pq = ipc.mqueue("pub", {capacity = 2, msgsize = 64, public = true})
local s = ipc.semaphore("s", 0)
local m = ipc.mutex("m")
local mem = ipc.shm("mem", 64)
local tl = ipc.listen("tcp", "127.0.0.1:0")
local ul = ipc.listen("unix", "sock")
local dl = ipc.listen("udp", "127.0.0.1:0")
local p = ipc.pipe{from = user, to = other}
if mode == "mainerror" then error("the supervisor's script fails after declaring everything") end
ipc.process(user, function()
  m:lock(); mem:add("i32", 0, 1); m:unlock()
  q:send("a"); pq:send("b")
  local w = f:open("w", {timeout = 60}); w:write("line\n"); w:close()
  local gw = g:open("w", {timeout = 60}); gw:write("line\n"); gw:close()
  local c = assert(ipc.connect("tcp", tl.address, {timeout = 60})); c:send({1, 2}); c:close()
  local u = assert(ipc.connect("unix", "sock", {timeout = 60})); u:write("hi\n"); u:close()
  dl:sendto(dl.address, "dgram")
  p:write("piped\n")
  s:wait()
  print("ready " .. f.path)
  if mode == "error" then error("a process fails") end
  if mode == "timeout" or mode == "sigint" or mode == "killed" then ipc.sleep(3600) end
end)
ipc.process(other, function()
  assert(q:receive{timeout = 60}); assert(pq:receive{timeout = 60})
  assert(f:open("r", {timeout = 60}):read())
  assert(g:open("r", {timeout = 60}):read())
  assert(assert(tl:accept{timeout = 60}):receive{timeout = 60})
  assert(assert(ul:accept{timeout = 60}):read())
  assert(dl:recvfrom{timeout = 60})
  assert(p:read())
  s:post()
  if mode == "timeout" or mode == "sigint" or mode == "killed" then ipc.sleep(3600) end
end)
`

// writeScript writes a script into a fresh directory and returns it.
func writeScript(t *testing.T, name, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func waitNoProcs(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a guard, not a speed: passing tests do not wait
	for {
		left := procsMatching(marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left behind: %s", strings.Join(left, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// snapshot lists what is ours in the name spaces a run may use: every
// entry of /dev/shm and /dev/mqueue (ipcscript never puts anything in
// /dev/shm, so any new entry there is suspect) and /tmp/ipcscript-*.
func snapshot() map[string]bool {
	s := map[string]bool{}
	for _, dir := range []string{"/dev/shm", "/dev/mqueue"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			s[filepath.Join(dir, e.Name())] = true
		}
	}
	dirs, _ := filepath.Glob("/tmp/ipcscript-*")
	for _, d := range dirs {
		s[d] = true
	}
	return s
}

// leftSince lists entries that are new since before, giving a moment to
// those that are going away, and ignoring runs of other users of this
// machine that are alive (their run directory names a live supervisor
// that is not one of ours).
func leftSince(before map[string]bool) []string {
	deadline := time.Now().Add(30 * time.Second) // a guard, not a speed
	for {
		var left []string
		for p := range snapshot() {
			if !before[p] && !liveForeignRun(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveForeignRun reports whether p belongs to a run whose supervisor is
// alive and was not started by this test (another test binary on the same
// machine, say): /tmp/ipcscript-<id> or /dev/mqueue/ipcscript.<id>.<name>.
func liveForeignRun(p string) bool {
	base := filepath.Base(p)
	var id string
	switch {
	case strings.HasPrefix(base, "ipcscript-"):
		id = strings.TrimPrefix(base, "ipcscript-")
	case strings.HasPrefix(base, "ipcscript."):
		id, _, _ = strings.Cut(strings.TrimPrefix(base, "ipcscript."), ".")
	default:
		return false
	}
	b, err := os.ReadFile(filepath.Join("/tmp", "ipcscript-"+id, "owner"))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "pid "); ok {
			pid, _ := strconv.Atoi(v)
			if pid <= 0 || syscall.Kill(pid, 0) != nil {
				return false
			}
			ppid := parentOf(pid)
			return ppid != os.Getpid()
		}
	}
	return false
}

func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// mqueueMounted makes sure /dev/mqueue shows the kernel's message queues,
// mounting it as root if it is not mounted (a fresh machine may not have
// it), or skips the test.
func mqueueMounted(t *testing.T) {
	t.Helper()
	if isMqueueMount() {
		return
	}
	if err := os.MkdirAll("/dev/mqueue", 0o755); err == nil {
		if err := syscall.Mount("none", "/dev/mqueue", "mqueue", 0, ""); err != nil {
			t.Skipf("/dev/mqueue is not mounted and mounting it failed (%v): run as root to audit message queues", err)
		}
	}
	if !isMqueueMount() {
		t.Skip("/dev/mqueue is not mounted")
	}
}

func isMqueueMount() bool {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[1] == "/dev/mqueue" && f[2] == "mqueue" {
			return true
		}
	}
	return false
}
