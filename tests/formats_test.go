package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A suite whose tests print before and after ipc.run(), in the parent and
// in a process: one passes, one fails an expectation, one does not load.
var formatSuite = map[string]string{
	"pass_test.lua": `local ipc = require("ipc")
print("main before run") -- top-level code: in every process
ipc.process("p", function() print("p runs"); io.stderr:write("p to stderr\n") end)
local r = ipc.run()
print("main after run", r.ok)
`,
	"fail_test.lua": `local ipc = require("ipc")
print("main before run") -- top-level code: in every process
ipc.process("q", function() print("q runs"); ipc.expect(false, "q wanted more") end)
ipc.run()
print("main after run")
`,
	"load_test.lua": "local ipc = require(\"ipc\")\nprint(\"never\"\n",
}

// runSuite writes the suite and runs `ipcscript test ARGS... DIR` in the
// directory that holds it (so names are relative).
func runSuite(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "suite")
	os.Mkdir(dir, 0o755)
	for name, src := range formatSuite {
		os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644)
	}
	cmd := ipcscript(append(append([]string{"test"}, args...), "suite")...)
	cmd.Dir = root
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// The parent's prints before and after ipc.run() land in the test's own
// output, in order, never in the report's stream.
func checkInOrder(t *testing.T, s string, lines ...string) {
	t.Helper()
	at := 0
	for _, l := range lines {
		i := strings.Index(s[at:], l)
		if i < 0 {
			t.Fatalf("%q missing or out of order in:\n%s", l, s)
		}
		at += i + len(l)
	}
}

func TestFormatText(t *testing.T) {
	t.Parallel()
	out, _, code := runSuite(t)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	checkInOrder(t, out, "FAIL suite/fail_test.lua", "main before run", "[q] q runs", "expectation failed", "main after run",
		"FAIL suite/load_test.lua", "suite/load_test.lua:2: syntax error", "PASS suite/pass_test.lua", "1 passed, 2 failed\n")
}

// -o tap is TAP version 14, read by perl's prove.
func TestFormatTAP(t *testing.T) {
	t.Parallel()
	out, errs, code := runSuite(t, "-o", "tap", "-v")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
	}
	if !strings.HasPrefix(out, "TAP version 14\n1..3\n") || !strings.HasSuffix(out, "\n# 1 passed, 2 failed\n") {
		t.Fatalf("TAP stream:\n%s", out)
	}
	checkInOrder(t, out, "not ok 1 - suite/fail_test.lua\n  ---\n  message: ", "  ...\n", "# main before run", "# main after run",
		"not ok 2 - suite/load_test.lua", "severity: error", "ok 3 - suite/pass_test.lua", "# main before run", "# [p] p runs", "# main after run")
	prove, err := exec.LookPath("prove")
	if err != nil {
		t.Skip("prove (perl) is not installed: the TAP stream was only checked by hand")
	}
	stream := filepath.Join(t.TempDir(), "suite.tap")
	os.WriteFile(stream, []byte(out), 0o644)
	res, _ := exec.Command(prove, "--exec", "cat", stream).CombinedOutput()
	if strings.Contains(string(res), "know about versions later than 13") {
		// Test::Harness before TAP 14 support (Debian 12 has 3.44): our
		// stream uses nothing of 14 but its version line, so check the rest.
		t.Log("this prove knows TAP up to version 13; checking the stream as version 13")
		os.WriteFile(stream, []byte(strings.Replace(out, "TAP version 14", "TAP version 13", 1)), 0o644)
		res, _ = exec.Command(prove, "--exec", "cat", stream).CombinedOutput()
	}
	if strings.Contains(string(res), "Parse errors") || !strings.Contains(string(res), "Tests: 3 Failed: 2") ||
		!regexp.MustCompile(`Failed tests?:\s+1-2`).Match(res) {
		t.Fatalf("prove says:\n%s", res)
	}
}

// -o junit validates against tests/testdata/formats/junit.xsd with xmllint.
func TestFormatJUnit(t *testing.T) {
	t.Parallel()
	out, errs, code := runSuite(t, "-o", "junit")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
	}
	if !strings.HasPrefix(out, "<?xml") {
		t.Fatalf("something precedes the XML declaration:\n%s", out)
	}
	checkInOrder(t, out, `<testsuites name="ipcscript test" tests="3" failures="1" errors="1"`,
		`<testsuite name="suite" tests="3" failures="1" errors="1"`,
		`<testcase name="fail_test.lua" classname="suite" time="`, `<failure message=`, `main before run`, `main after run`,
		`<testcase name="load_test.lua" classname="suite"`, `<error message="suite/load_test.lua:2: syntax error`, `type="load error"`,
		`<testcase name="pass_test.lua" classname="suite"`, `main before run`, `[p] p runs`, `main after run`, `</testsuites>`)
	if !regexp.MustCompile(`timestamp="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"`).MatchString(out) {
		t.Fatalf("no timestamp:\n%s", out)
	}
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint is not installed (Debian: libxml2-utils): the XML was not checked against the schema")
	}
	file := filepath.Join(t.TempDir(), "results.xml")
	os.WriteFile(file, []byte(out), 0o644)
	xsd, _ := filepath.Abs("testdata/formats/junit.xsd")
	res, err := exec.Command(xmllint, "--noout", "--schema", xsd, file).CombinedOutput()
	if err != nil || !strings.Contains(string(res), "validates") {
		t.Fatalf("xmllint: %v\n%s\n%s", err, res, out)
	}
}

// testEvent is cmd/test2json's TestEvent (go doc cmd/test2json).
type testEvent struct {
	Time        time.Time
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	FailedBuild string
}

// -o json is the `go test -json` event stream: every line decodes into
// test2json's TestEvent (nothing else in it), python's json reads every
// line, and gotestsum, when the module proxy serves it, summarises it.
func TestFormatTestJSON(t *testing.T) {
	t.Parallel()
	out, errs, code := runSuite(t, "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
	}
	var events []testEvent
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		var e testEvent
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if e.Time.IsZero() || e.Package != "suite" {
			t.Fatalf("event without time or package: %q", sc.Text())
		}
		events = append(events, e)
	}
	final := map[string]string{}
	var output strings.Builder
	for _, e := range events {
		switch e.Action {
		case "pass", "fail":
			final[e.Test] = e.Action
		case "output":
			output.WriteString(e.Output)
		case "start", "run":
		default:
			t.Fatalf("unknown action %q", e.Action)
		}
	}
	want := map[string]string{"": "fail", "pass_test.lua": "pass", "fail_test.lua": "fail", "load_test.lua": "fail"}
	for k, v := range want {
		if final[k] != v {
			t.Fatalf("final actions %v, want %v", final, want)
		}
	}
	checkInOrder(t, output.String(), "=== RUN   fail_test.lua", "main before run", "main after run", "--- FAIL: fail_test.lua",
		"--- FAIL: load_test.lua", "=== RUN   pass_test.lua", "main after run", "--- PASS: pass_test.lua", "FAIL\n")

	stream := filepath.Join(t.TempDir(), "events.json")
	os.WriteFile(stream, []byte(out), 0o644)
	if py, err := exec.LookPath("python3"); err == nil {
		res, err := exec.Command(py, "-c", `import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line); n += 1
    assert {"Time", "Action", "Package"} <= set(e), e
print(n, "events")`, stream).CombinedOutput()
		if err != nil {
			t.Fatalf("python3 json: %v\n%s", err, res)
		}
	}
	gotestsum := gotestsumBinary(t)
	if gotestsum == "" {
		return
	}
	res, err := exec.Command(gotestsum, "--format", "standard-verbose", "--raw-command", "--", "cat", stream).CombinedOutput()
	if err != nil || strings.Contains(string(res), "failed to parse") ||
		!regexp.MustCompile(`DONE 3 tests, 2 failures`).Match(res) {
		t.Fatalf("gotestsum (err %v) says:\n%s", err, res)
	}
}

// gotestsumBinary installs gotestsum (the version go-partial.tsv lists)
// through the module proxy into a temporary directory; "" when it cannot.
func gotestsumBinary(t *testing.T) string {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Log("no go command: checked against test2json's TestEvent and python's json only")
		return ""
	}
	bin := t.TempDir()
	cmd := exec.Command(goTool, "install", "gotest.tools/gotestsum@v1.13.0")
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=-buildvcs=false")
	if res, err := cmd.CombinedOutput(); err != nil {
		t.Logf("gotestsum not available (go install: %s): checked against test2json's TestEvent and python's json only", strings.TrimSpace(string(res)))
		return ""
	}
	return filepath.Join(bin, "gotestsum")
}

// `ipcscript --json` with prints before and after ipc.run(): stdout is one
// JSON document python reads; the prints went to stderr.
func TestRunJSONStaysValid(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "pr.lua")
	os.WriteFile(script, []byte(formatSuite["pass_test.lua"]), 0o644)
	cmd := ipcscript("--json", script)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out.String())
	}
	checkInOrder(t, errb.String(), "main before run", "main after run")
	if py, err := exec.LookPath("python3"); err == nil {
		c := exec.Command(py, "-c", "import json, sys; r = json.load(sys.stdin); assert r['ok'] and r['processes'][0]['name'] == 'p'")
		c.Stdin = bytes.NewReader(out.Bytes())
		if res, err := c.CombinedOutput(); err != nil {
			t.Fatalf("python3: %v\n%s", err, res)
		}
	}
}

// `ipcscript test` on a directory without tests exits 5, as pytest does.
func TestNoTestsExit5(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, format := range []string{"text", "tap", "junit", "json"} {
		cmd := ipcscript("test", "-o", format, dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 5 || !strings.Contains(out.String(), "no tests found") {
			t.Fatalf("-o %s: exit %d, want 5\n%s", format, code, out.String())
		}
	}
}

// --json gives one JSON document on stdout whatever the outcome, with the
// outcome's fields, and the exit code of that outcome.
func TestRunJSONEveryOutcome(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, src string
		args      []string
		code      int
		field     string
	}{
		{"ok", formatSuite["pass_test.lua"], nil, 0, `"ok": true`},
		{"failure", formatSuite["fail_test.lua"], nil, 1, `"expectations_failed"`},
		{"load", formatSuite["load_test.lua"], nil, 65, `"load_error": true`},
		{"missing", "", nil, 66, `"no_input": true`},
		{"deadlock", `local ipc = require("ipc")
print("before")
local ab, ba = ipc.pipe{from = "a", to = "b"}, ipc.pipe{from = "b", to = "a"}
ipc.process("a", function() ba:read() end)
ipc.process("b", function() ab:read() end)
ipc.run()
print("after")
`, nil, 3, `"deadlock": "cycle`},
		{"timeout", `local ipc = require("ipc")
print("before")
ipc.process("s", function() ipc.sleep(60) end)
ipc.run()
print("after")
`, []string{"--timeout", "1"}, 124, `"timed_out": true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			script := filepath.Join(dir, tc.name+".lua")
			if tc.src != "" {
				os.WriteFile(script, []byte(tc.src), 0o644)
			}
			cmd := ipcscript(append(append([]string{"--json"}, tc.args...), script)...)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, errb.String())
			}
			var rep map[string]any
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("stdout is not one JSON document: %v\n%s", err, out.String())
			}
			if _, ok := rep["processes"].([]any); !ok {
				t.Fatalf("processes is not a list: %s", out.String())
			}
			if !strings.Contains(out.String(), tc.field) {
				t.Fatalf("no %s in %s", tc.field, out.String())
			}
		})
	}
}
