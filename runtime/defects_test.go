package runtime_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/runtime"
)

// Each test here is one defect an adversarial run found; each failed
// before its fix.

// math.randomseed(n) seeds a generator of this Lua state: after equal
// seeds the parent and every child draw the same numbers, so a declaration
// sized with math.random matches in all of them. (gopher-lua's randomseed
// called rand.Seed, a no-op since Go 1.24.)
func TestRandomSeedIsPerState(t *testing.T) {
	rep, out, errs := run(t, `
local ipc = require("ipc")
math.randomseed(42)
local box = ipc.mailbox("m", {capacity = math.random(1, 1000000)})
ipc.process("a", {count = 2}, function() print("draw", math.random(1, 1000000000), math.random()) end)
`, runtime.Options{})
	if !rep.OK {
		t.Fatalf("run failed: %s\n%s", rep.Summary(), errs)
	}
	var draws []string
	for _, l := range strings.Split(out, "\n") {
		if _, d, ok := strings.Cut(l, "] draw"); ok {
			draws = append(draws, d)
		}
	}
	if len(draws) != 2 || draws[0] != draws[1] {
		t.Fatalf("draws after the same seed: %q (out %q)", draws, out)
	}
}

// A body's child programs do not inherit IPCSCRIPT_CHILD: before, an
// os.execute("ipcscript ok.lua") in a body failed with "control socket
// (fd 3) is missing".
func TestChildEnvironmentHasNoManifest(t *testing.T) {
	rep, _, errs := run(t, `
local ipc = require("ipc")
ipc.process("a", function()
  ipc.expect(os.getenv("IPCSCRIPT_CHILD") == nil, "os.getenv sees the manifest")
  local code = os.execute('test -z "$IPCSCRIPT_CHILD"')
  ipc.expect(code == 0, "a program started by the body has IPCSCRIPT_CHILD: " .. tostring(code))
end)
`, runtime.Options{})
	if !rep.OK {
		t.Fatalf("%s: %v\n%s", rep.Summary(), rep.Failed, errs)
	}
}

// A program a body starts inherits stdin, stdout and stderr and nothing
// else: none of the descriptors the manifest gave the process (its control
// socket, the status table, the source, every process's inbox, a pipe's
// ends), which the child marks close-on-exec at start (one close_range).
func TestChildProgramsInheritNoDescriptors(t *testing.T) {
	rep, _, errs := run(t, `
local ipc = require("ipc")
local p = ipc.pipe{from = "a", to = "b"}
for _, name in ipairs{"a", "b"} do
  ipc.process(name, function()
    local f = io.popen("ls /proc/self/fd")
    local fds = f:read("*a")
    f:close()
    -- ls itself holds 0, 1 (the popen pipe), 2 and the directory it reads
    ipc.expect(fds:gsub("%s+", " ") == "0 1 2 3 ", name .. " started a program holding " .. fds:gsub("%s+", " "))
  end)
end
`, runtime.Options{})
	if !rep.OK {
		t.Fatalf("%s: %v\n%s", rep.Summary(), rep.Failed, errs)
	}
}

// What a body wrote with io.write reaches the output when it ends, on
// every way out: a normal end, an error, and io.stdout replaced by the
// script (then nothing is flushed, and nothing fails).
func TestChildFlushesIoWriteAtExit(t *testing.T) {
	rep, out, errs := run(t, `
local ipc = require("ipc")
ipc.process("a", function() io.stdout:setvbuf("full"); io.write("a-partial") end)
ipc.process("b", function() io.stdout:setvbuf("full"); io.write("b-partial"); error("boom") end)
ipc.process("c", function() io.stdout:setvbuf("full"); io.stdout = nil end)
`, runtime.Options{NoPrefix: true})
	for _, want := range []string{"a-partial", "b-partial"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q (stderr %s)", out, want, errs)
		}
	}
	for _, p := range rep.Processes {
		if (p.Name == "b") == p.OK {
			t.Errorf("process %s: ok=%v (%s)", p.Name, p.OK, p.Error)
		}
	}
}

// A forged manifest naming more processes than its status table has slots
// is refused with a message; it panicked the child (index out of range in
// ipc/status.go).
func TestForgedManifestDoesNotPanic(t *testing.T) {
	st, err := ipc.NewStatusTable(1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Region.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctlParent, ctlChild := os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "ctl")
	defer ctlParent.Close()
	defer ctlChild.Close()
	src, _ := os.CreateTemp(t.TempDir(), "src")
	src.WriteString(`require("ipc")`)
	m := &bindings.Manifest{Script: "x.lua", Self: "c", Ctl: 3, Status: 4, Source: 5,
		Procs: []bindings.ManifestProc{{Name: "a", Group: "a", Index: 1, Count: 1, Slot: 0, Serial: 1}, {Name: "b", Group: "b", Index: 1, Count: 1, Slot: 1, Serial: 2}, {Name: "c", Group: "c", Index: 1, Count: 1, Slot: 2, Serial: 3}}}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "IPCSCRIPT_CHILD="+runtime.EncodeManifest(m))
	cmd.ExtraFiles = []*os.File{ctlChild, st.Region.File, src}
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != runtime.ExitFailed || strings.Contains(string(out), "panic") || !strings.Contains(string(out), "status table") {
		t.Fatalf("forged manifest: %v\n%s", err, out)
	}
}

// Names are checked where they are declared: a NUL byte (which no argv,
// file name or queue name can carry) is refused at its line, not at launch.
func TestNamesValidatedAtDeclaration(t *testing.T) {
	for _, decl := range []string{
		`ipc.process("a\0b", function() end)`,
		`ipc.mailbox("m\0x")`,
		`ipc.fifo("f\0x")`,
		`ipc.process("tab\tname", function() end)`,
		`ipc.mailbox(string.rep("n", 300))`,
	} {
		rep, _, _ := run(t, "local ipc = require(\"ipc\")\n"+decl+"\nipc.process(\"ok\", function() end)\n", runtime.Options{})
		if rep.OK || !strings.Contains(rep.Error, "test.lua:2") || len(rep.Processes) != 0 {
			t.Errorf("%s: ok=%v error=%q processes=%d", decl, rep.OK, rep.Error, len(rep.Processes))
		}
	}
}

// An error object is shown through its __tostring, in a process and at
// the top level, as Lua's interpreter does; it read "table: 0x...".
func TestErrorObjectTostring(t *testing.T) {
	rep, _, _ := run(t, `
local ipc = require("ipc")
local E = {__tostring = function(e) return "custom failure " .. e.code end}
ipc.process("a", function() error(setmetatable({code = 7}, E)) end)
ipc.run()
error(setmetatable({code = 9}, E))
`, runtime.Options{})
	if a := rep.Process("a"); a == nil || a.Error != "custom failure 7" {
		t.Fatalf("process error = %+v", a)
	}
	if !strings.Contains(rep.Error, "custom failure 9") {
		t.Fatalf("main error = %q", rep.Error)
	}
}

// A Go panic inside a binding is an internal error: exit 70, not 1 (a
// script's failure) nor 2 (Go's panic code, our usage code).
func TestInternalErrorExit70(t *testing.T) {
	for _, src := range []string{
		`require("boom").now()`,
		`local ipc = require("ipc") ipc.process("a", function() require("boom").now() end)`,
	} {
		rep, _, _ := run(t, src, runtime.Options{})
		if rep.ExitCode() != runtime.ExitInternal {
			t.Errorf("%s: exit %d (%s); want %d", src, rep.ExitCode(), rep.Summary(), runtime.ExitInternal)
		}
	}
}

// m.len is the body's size in bytes as documented: a 64-byte string body
// has len 64 (it was 66, the MessagePack encoding's size).
func TestMessageLenIsBodyBytes(t *testing.T) {
	rep, out, errs := run(t, `
local ipc = require("ipc")
local box = ipc.mailbox("m")
ipc.process("s", function() box:send(string.rep("x", 64)) ipc.send("r", "abc") end)
ipc.process("r", function()
  local m = box:receive()
  local d = ipc.receive()
  print("len", m.len, #m.body, d.len)
end)
`, runtime.Options{})
	if !rep.OK || !strings.Contains(out, "len\t64\t64\t3") {
		t.Fatalf("%s out=%q\n%s", rep.Summary(), out, errs)
	}
}

// Durations are validated: NaN, negative, infinite and overflowing values
// are errors naming the value (ipc.sleep(1e10) returned at once and
// ipc.run{timeout = NaN} meant no timeout); math.huge sleeps until the run
// ends.
func TestDurationsValidated(t *testing.T) {
	for _, tc := range []struct{ code, want string }{
		{`ipc.sleep(1e10)`, "1e+10 seconds is more than"},
		{`ipc.sleep(-1)`, "negative"},
		{`ipc.sleep(0/0)`, "NaN"},
		{`ipc.run{timeout = 0/0}`, "NaN"},
		{`ipc.run{timeout = -1}`, "negative"},
		{`ipc.run{timeout = math.huge}`, "inf"},
		{`ipc.run{timeout = 1e300}`, "more than"},
		{`ipc.process("a", function() ipc.sleep(1e10) end)`, "1e+10 seconds is more than"},
		{`local b = ipc.mailbox("m") ipc.process("a", function() b:receive{timeout = 0/0} end)`, "NaN"},
	} {
		rep, _, _ := run(t, "local ipc = require(\"ipc\")\n"+tc.code+"\n", runtime.Options{})
		msg := rep.Error
		if a := rep.Process("a"); a != nil {
			msg = a.Error
		}
		if rep.OK || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: ok=%v error=%q; want %q", tc.code, rep.OK, msg, tc.want)
		}
	}
	start := time.Now()
	rep, _, _ := run(t, `local ipc = require("ipc") ipc.process("a", function() ipc.sleep(math.huge) end)`, runtime.Options{Timeout: 300 * time.Millisecond})
	if !rep.TimedOut || rep.ExitCode() != runtime.ExitTimeout {
		t.Fatalf("sleep(math.huge): %s after %v; want a timeout", rep.Summary(), time.Since(start))
	}
}

// --timeout bounds top-level code too: a parent spinning before ipc.run
// ran for 601 s under --timeout 2.
func TestTimeoutBoundsTopLevel(t *testing.T) {
	for _, src := range []string{
		`local ipc = require("ipc") ipc.process("x", function() end) while true do end`,
		`local ipc = require("ipc") ipc.process("x", function() end) ipc.run() while true do end`,
		`local ipc = require("ipc") ipc.process("x", function() while true do end end) ipc.run() while true do end`,
	} {
		rep, _, _ := run(t, src, runtime.Options{Timeout: 300 * time.Millisecond})
		if !rep.TimedOut || rep.ExitCode() != runtime.ExitTimeout {
			t.Errorf("%s: %s (exit %d); want a timeout", src, rep.Summary(), rep.ExitCode())
		}
	}
	// ipc.run{timeout} leaves the top level the grace period to read the
	// report after the processes are stopped.
	rep, _, errs := run(t, `local ipc = require("ipc")
ipc.process("x", function() ipc.sleep(60) end)
local r = ipc.run{timeout = 0.2, expect = "timeout"}
ipc.log("after", r.timed_out)`, runtime.Options{})
	if !rep.OK || !strings.Contains(errs, "after\ttrue") {
		t.Fatalf("expect=timeout: %s %+v errs=%q", rep.Summary(), rep, errs)
	}
}

// count and the number of processes are capped with a clear error; a
// count of 1e9 grew the supervisor by 90 MB/s.
func TestProcessCountCapped(t *testing.T) {
	rep, _, _ := run(t, `local ipc = require("ipc") ipc.process("w", {count = 1e9}, function() end)`, runtime.Options{})
	if rep.OK || !strings.Contains(rep.Error, "processes a run may have (--max-procs)") {
		t.Fatalf("count=1e9: %s", rep.Error)
	}
	rep, _, _ = run(t, `local ipc = require("ipc")
ipc.process("a", {count = 3}, function() end)
ipc.process("b", {count = 3}, function() end)`, runtime.Options{MaxProcs: 5})
	if rep.OK || !strings.Contains(rep.Error, "more than the 5 a run may have") {
		t.Fatalf("max 5: %s", rep.Error)
	}
}
