package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/runtime"
)

// The parent's print, io.write and io.stdout go through Options.Stdout
// (an embedder's buffer sees them), in the order the script wrote them,
// before and after ipc.run; io.stderr goes through Options.Stderr.
func TestParentOutputThroughOptions(t *testing.T) {
	rep, out, errs := run(t, `
local ipc = require("ipc")
if not require("role").child() then -- the script runs in every process
  print("before", 1)
  io.write("partial ")
  io.write("line\n")
  io.stdout:write("via io.stdout\n")
  io.stderr:write("to stderr\n")
  assert(io.type(io.stdout) == "file")
  assert(io.output() == io.stdout)
end
ipc.process("p", function() print("child") end)
local r = ipc.run()
io.write("no newline at the end")
print("after", r.ok)
io.write("tail")
`, runtime.Options{NoPrefix: true})
	if !rep.OK {
		t.Fatalf("run failed: %s\n%s", rep.Summary(), errs)
	}
	want := "before\t1\npartial line\nvia io.stdout\nchild\nno newline at the endafter\ttrue\ntail"
	if out != want {
		t.Fatalf("stdout = %q\nwant     %q", out, want)
	}
	if !strings.Contains(errs, "to stderr\n") {
		t.Fatalf("stderr = %q", errs)
	}
}

// When Stdout and Stderr are one writer (the test runner's capture), a
// child's stdout and stderr lines keep the order it wrote them in.
func TestOneWriterKeepsOrder(t *testing.T) {
	for i := 0; i < 3; i++ {
		var buf bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		rep, err := runtime.RunString(ctx, "order.lua", `
local ipc = require("ipc")
ipc.process("p", function()
  for i = 1, 20 do
    if i % 2 == 1 then io.stdout:write("out ", i, "\n") else io.stderr:write("err ", i, "\n") end
  end
  ipc.expect(false, "last")
end)
`, runtime.Options{Stdout: &buf, Stderr: &buf, NoPrefix: true, Modules: testModules})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK {
			t.Fatal("the expectation should have failed the run")
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) < 21 {
			t.Fatalf("output:\n%s", buf.String())
		}
		for j := 1; j <= 20; j++ {
			kind := "out"
			if j%2 == 0 {
				kind = "err"
			}
			if want := kind + " " + itoa(j); lines[j-1] != want {
				t.Fatalf("line %d = %q, want %q\n%s", j, lines[j-1], want, buf.String())
			}
		}
		if !strings.Contains(lines[20], "expectation failed") {
			t.Fatalf("line 21 = %q, want the expectation failure", lines[20])
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// An embedder's context deadline is a timeout (124), not an interrupt.
func TestContextDeadlineIsTimeout(t *testing.T) {
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rep, err := runtime.RunString(ctx, "slow.lua", `
local ipc = require("ipc")
ipc.process("slow", function() ipc.sleep(30) end)
`, runtime.Options{Stdout: &out, Stderr: &errb, Modules: testModules, Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.TimedOut || rep.Signal != "" || rep.ExitCode() != runtime.ExitTimeout {
		t.Fatalf("timed_out=%v signal=%q code=%d; want a timeout, 124\n%s", rep.TimedOut, rep.Signal, rep.ExitCode(), errb.String())
	}
}

// A host that forgot runtime.Child would re-run the script in every child:
// RunString refuses in a child instead of launching a chain.
func TestRunStringRefusesInChild(t *testing.T) {
	t.Setenv("IPCSCRIPT_CHILD", "Self p")
	rep, err := runtime.RunString(context.Background(), "x.lua", `print("ran")`, runtime.Options{})
	if !errors.Is(err, runtime.ErrInChild) || rep != nil {
		t.Fatalf("err = %v, rep = %v; want ErrInChild", err, rep)
	}
	if !strings.Contains(err.Error(), "runtime.Child") {
		t.Fatalf("the error should say what to do: %v", err)
	}
	if _, err := runtime.RunFile(context.Background(), "x.lua", runtime.Options{}); !errors.Is(err, runtime.ErrInChild) {
		t.Fatalf("RunFile: err = %v", err)
	}
}

// A load error's JSON report has "processes": [], not null.
func TestLoadErrorJSONProcesses(t *testing.T) {
	rep, _, _ := run(t, "ipc.process(", runtime.Options{})
	if !rep.LoadError || rep.ExitCode() != runtime.ExitLoad {
		t.Fatalf("load_error=%v code=%d", rep.LoadError, rep.ExitCode())
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if p, ok := m["processes"].([]any); !ok || len(p) != 0 {
		t.Fatalf("processes = %#v in %s", m["processes"], b)
	}
}

// A script file that cannot be read exits 66 (sysexits EX_NOINPUT).
func TestMissingScriptNoInput(t *testing.T) {
	rep, err := runtime.RunFile(context.Background(), "/nonexistent/x.lua", runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode() != runtime.ExitNoInput || !strings.Contains(rep.Error, "/nonexistent/x.lua") {
		t.Fatalf("code=%d error=%q", rep.ExitCode(), rep.Error)
	}
}

// A declaration that differs before the process's own ipc.process (where
// the child does not know yet which process it is) names both
// declarations instead of crashing on a nil process.
func TestDeclarationDiffersBeforeOwnProcess(t *testing.T) {
	rep, _, errs := run(t, `
local ipc = require("ipc")
local cap = require("role").child() and 7 or 3
ipc.mailbox("jobs", {capacity = cap})
ipc.process("a", function() end)
`, runtime.Options{})
	a := rep.Process("a")
	if rep.OK || a == nil {
		t.Fatalf("ok=%v; want a declaration mismatch\n%s", rep.OK, errs)
	}
	if strings.Contains(a.Error, "nil pointer") || !strings.Contains(a.Error, `process "a"`) ||
		!strings.Contains(a.Error, "capacity=3") || !strings.Contains(a.Error, "capacity=7") {
		t.Fatalf("process a error = %q", a.Error)
	}
}

// A syntax error reads file:line:column: message, as compilers write it.
func TestSyntaxErrorFileLine(t *testing.T) {
	rep, _, _ := run(t, "local ipc = require(\"ipc\")\nlocal x = = 1\n", runtime.Options{})
	if want := "test.lua:2:11: syntax error near '='"; rep.Error != want {
		t.Fatalf("error = %q, want %q", rep.Error, want)
	}
	rep, _, _ = run(t, "ipc.process(\"x\", function() end\n", runtime.Options{})
	if !strings.HasPrefix(rep.Error, "test.lua:1: syntax error at the end of the file") {
		t.Fatalf("error = %q", rep.Error)
	}
}

// io.output(file) still redirects io.write to that file in the parent, and
// io.output(io.stdout) brings it back to the runtime's writer.
func TestParentIOOutputFile(t *testing.T) {
	file := t.TempDir() + "/out.txt"
	rep, out, errs := run(t, `
local ipc = require("ipc")
if not require("role").child() then
  io.output("`+file+`")
  io.write("to the file\n")
  io.close()
  io.output(io.stdout)
  io.write("back on stdout\n")
  assert(io.stdout:close() == nil, "stdout cannot be closed")
end
`, runtime.Options{})
	if !rep.OK {
		t.Fatalf("%s\n%s", rep.Summary(), errs)
	}
	b, _ := os.ReadFile(file)
	if string(b) != "to the file\n" || out != "back on stdout\n" {
		t.Fatalf("file %q, stdout %q", b, out)
	}
}

// A child's output pipe: the supervisor's read end is non-blocking (the
// netpoller reads it), the child's write end blocking (a program writing
// to it must not see EAGAIN), and neither leaks into other children.
func TestOutputPipeEnds(t *testing.T) {
	r, w, err := runtime.OutputPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, c := range []struct {
		f           *os.File
		nonblocking bool
	}{{r, true}, {w, false}} {
		fl, err := unix.FcntlInt(c.f.Fd(), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := fl&unix.O_NONBLOCK != 0; got != c.nonblocking {
			t.Errorf("%s: non-blocking %v, want %v", c.f.Name(), got, c.nonblocking)
		}
		fd, err := unix.FcntlInt(c.f.Fd(), unix.F_GETFD, 0)
		if err != nil {
			t.Fatal(err)
		}
		if fd&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s: not close-on-exec", c.f.Name())
		}
	}
	if _, err := w.Write([]byte("line\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "line\n" {
		t.Errorf("read %q, %v", b, err)
	}
}
