package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ipcscript/ipcscript/runtime"
)

// runTests is `ipcscript test [paths...]`: every *_test.lua is a run that
// passes or fails. The report goes to stdout in the chosen format; the
// closing "N passed, N failed" line is on stdout for text (and as a TAP
// comment), on stderr for the machine formats.
func runTests(ctx context.Context, s *settings, paths []string, stdout, stderr io.Writer) error {
	opts, err := s.options()
	if err != nil {
		return err
	}
	files, err := runtime.FindTests(paths)
	if err != nil {
		if os.IsNotExist(err) {
			return &exitError{code: runtime.ExitNoInput, msg: "test: " + err.Error()}
		}
		return usagef("test: %v", err)
	}
	where := strings.Join(paths, " ")
	if where == "" {
		where = "."
	}
	var rep reporter
	switch s.output {
	case "tap":
		rep = &tapReporter{w: stdout, verbose: s.verbose}
	case "junit":
		rep = &junitReporter{w: stdout}
	case "json":
		rep = &eventReporter{enc: json.NewEncoder(stdout)}
	default:
		rep = &textReporter{w: stdout, verbose: s.verbose}
	}
	rep.begin(len(files))
	if len(files) == 0 {
		rep.end(0, 0)
		fmt.Fprintf(stderr, "ipcscript test: no tests found (*_test.lua) in %s\n", where)
		return exitCode(runtime.ExitNoTests)
	}
	passed, failed := 0, 0
	for i, f := range files {
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		rep.start(i, f, start)
		o := opts
		if opts.Trace.Path != "" { // --trace-dir: one trace per test file
			o.Trace.Path = traceFileFor(opts.Trace.Path, f)
		}
		res := runtime.RunTest(ctx, f, o)
		if res.Passed {
			passed++
		} else {
			failed++
		}
		rep.result(i, f, start, res)
	}
	rep.end(passed, failed)
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "ipcscript test: interrupted\n")
		return exitCode(runtime.ExitInterrupted)
	}
	if _, text := rep.(*textReporter); !text {
		fmt.Fprintf(stderr, "%d passed, %d failed\n", passed, failed)
	}
	if failed > 0 {
		return exitCode(runtime.ExitFailed)
	}
	return nil
}

// reporter writes one format of the test report as the tests run.
type reporter interface {
	begin(n int)
	start(i int, file string, at time.Time)
	result(i int, file string, at time.Time, res runtime.TestResult)
	end(passed, failed int)
}

// isError tells a test that could not run (it does not load, its file
// cannot be read) from one that ran and failed: JUnit's <error> vs <failure>.
func isError(res runtime.TestResult) bool {
	return res.Report == nil || res.Report.LoadError
}

// testSummary is why a test failed, naming its file once.
func testSummary(f string, res runtime.TestResult) string {
	if strings.HasPrefix(res.Summary, f+":") {
		return res.Summary
	}
	return f + ": " + res.Summary
}

func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, prefix) + "\n"
}

// text: PASS/FAIL lines, the output of failures, "N passed, N failed".
type textReporter struct {
	w       io.Writer
	verbose bool
}

func (r *textReporter) begin(int)                    {}
func (r *textReporter) start(int, string, time.Time) {}
func (r *textReporter) end(passed, failed int) {
	fmt.Fprintf(r.w, "%d passed, %d failed\n", passed, failed)
}
func (r *textReporter) result(_ int, f string, _ time.Time, res runtime.TestResult) {
	if res.Passed {
		fmt.Fprintf(r.w, "PASS %s (%.2fs)\n", f, res.Elapsed)
	} else {
		fmt.Fprintf(r.w, "FAIL %s (%.2fs): %s\n", f, res.Elapsed, res.Summary)
		if res.Report != nil && res.Report.TracePath != "" {
			fmt.Fprintf(r.w, "    trace: %s\n", res.Report.TracePath)
		}
	}
	if !res.Passed || r.verbose {
		fmt.Fprint(r.w, indent(res.Output, "    "))
	}
}

// tap: TAP version 14 (https://testanything.org/tap-version-14-specification.html).
type tapReporter struct {
	w       io.Writer
	verbose bool
}

func (r *tapReporter) begin(n int) {
	fmt.Fprintf(r.w, "TAP version 14\n")
	if n == 0 {
		fmt.Fprintf(r.w, "1..0 # SKIP no tests found\n")
		return
	}
	fmt.Fprintf(r.w, "1..%d\n", n)
}
func (r *tapReporter) start(int, string, time.Time) {}
func (r *tapReporter) result(i int, f string, _ time.Time, res runtime.TestResult) {
	if res.Passed {
		fmt.Fprintf(r.w, "ok %d - %s\n", i+1, tapEscape(f))
	} else {
		fmt.Fprintf(r.w, "not ok %d - %s\n", i+1, tapEscape(f))
		severity := "fail"
		if isError(res) {
			severity = "error"
		}
		// The YAML diagnostic block, indented two spaces.
		fmt.Fprintf(r.w, "  ---\n  message: %s\n  severity: %s\n  duration_ms: %d\n  ...\n",
			yamlString(res.Summary), severity, int64(res.Elapsed*1000))
	}
	if !res.Passed || r.verbose {
		fmt.Fprint(r.w, indent(res.Output, "# "))
	}
}
func (r *tapReporter) end(passed, failed int) {
	fmt.Fprintf(r.w, "# %d passed, %d failed\n", passed, failed)
}

// tapEscape escapes what would end a TAP description early.
func tapEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "#", `\#`, "\n", " ").Replace(s)
}

// yamlString is a double-quoted YAML scalar (JSON's quoting is valid YAML).
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// json: the event stream of `go test -json` (cmd/test2json): each directory
// is a package, each file a test. gotestsum, go-junit-report and CI
// dashboards that read go test's output read this.
type eventReporter struct {
	enc     *json.Encoder
	pkg     string // the package (directory) being reported
	pkgAt   time.Time
	pkgFail bool
}

// testEvent is cmd/test2json's TestEvent.
type testEvent struct {
	Time    time.Time `json:",omitempty"`
	Action  string
	Package string  `json:",omitempty"`
	Test    string  `json:",omitempty"`
	Elapsed float64 `json:",omitempty"`
	Output  string  `json:",omitempty"`
}

func (r *eventReporter) emit(e testEvent) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.enc.Encode(e)
}

func (r *eventReporter) begin(int) {}

func (r *eventReporter) start(_ int, f string, at time.Time) {
	pkg, name := filepath.Dir(f), filepath.Base(f)
	if pkg != r.pkg {
		r.endPackage()
		r.pkg, r.pkgAt, r.pkgFail = pkg, at, false
		r.emit(testEvent{Time: at, Action: "start", Package: pkg})
	}
	r.emit(testEvent{Time: at, Action: "run", Package: pkg, Test: name})
	r.emit(testEvent{Time: at, Action: "output", Package: pkg, Test: name, Output: "=== RUN   " + name + "\n"})
}

func (r *eventReporter) result(_ int, f string, _ time.Time, res runtime.TestResult) {
	pkg, name := filepath.Dir(f), filepath.Base(f)
	out := func(s string) { r.emit(testEvent{Action: "output", Package: pkg, Test: name, Output: s}) }
	for _, line := range strings.SplitAfter(res.Output, "\n") {
		if line != "" {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			out("    " + line)
		}
	}
	action, word := "pass", "PASS"
	if !res.Passed {
		action, word = "fail", "FAIL"
		r.pkgFail = true
		out("    " + testSummary(f, res) + "\n")
	}
	out(fmt.Sprintf("--- %s: %s (%.2fs)\n", word, name, res.Elapsed))
	r.emit(testEvent{Action: action, Package: pkg, Test: name, Elapsed: round2(res.Elapsed)})
}

func (r *eventReporter) endPackage() {
	if r.pkg == "" {
		return
	}
	action, word := "pass", "PASS"
	if r.pkgFail {
		action, word = "fail", "FAIL"
	}
	elapsed := round2(time.Since(r.pkgAt).Seconds())
	r.emit(testEvent{Action: "output", Package: r.pkg, Output: word + "\n"})
	r.emit(testEvent{Action: "output", Package: r.pkg, Output: fmt.Sprintf("%s\t%s\t%.3fs\n", strings.ToLower(word), r.pkg, elapsed)})
	r.emit(testEvent{Action: action, Package: r.pkg, Elapsed: elapsed})
	r.pkg = ""
}

func (r *eventReporter) end(int, int) { r.endPackage() }

func round2(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// junit: JUnit XML as Jenkins, GitLab and GitHub test reporters read it
// (the schema we check against is tests/testdata/junit.xsd): <testsuites>,
// one <testsuite> per directory, a <testcase> per file with classname and
// time; <failure> for a test that ran and failed, <error> for one that
// could not run (it does not load).
type junitReporter struct {
	w       io.Writer
	started time.Time
	suites  []*junitSuite
}

type junitSuites struct {
	Name      string        `xml:"name,attr"`
	Tests     int           `xml:"tests,attr"`
	Failures  int           `xml:"failures,attr"`
	Errors    int           `xml:"errors,attr"`
	Skipped   int           `xml:"skipped,attr"`
	Time      string        `xml:"time,attr"`
	Timestamp string        `xml:"timestamp,attr"`
	Suites    []*junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Hostname  string      `xml:"hostname,attr,omitempty"`
	Cases     []junitCase `xml:"testcase"`
	elapsed   float64
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Output    string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// junitTime is the timestamp form of the JUnit schema (xs:dateTime, no zone).
func junitTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }

func (r *junitReporter) begin(int) { r.started = time.Now() }

func (r *junitReporter) start(_ int, f string, at time.Time) {
	pkg := filepath.Dir(f)
	if len(r.suites) == 0 || r.suites[len(r.suites)-1].Name != pkg {
		host, _ := os.Hostname()
		r.suites = append(r.suites, &junitSuite{Name: pkg, Timestamp: junitTime(at), Hostname: host})
	}
}

func (r *junitReporter) result(_ int, f string, _ time.Time, res runtime.TestResult) {
	s := r.suites[len(r.suites)-1]
	c := junitCase{Name: filepath.Base(f), Classname: s.Name, File: f, Time: fmt.Sprintf("%.3f", res.Elapsed), Output: res.Output}
	s.Tests++
	s.elapsed += res.Elapsed
	switch {
	case res.Passed:
	case isError(res):
		s.Errors++
		c.Error = &junitProblem{Message: res.Summary, Type: "load error", Text: res.Summary}
	default:
		s.Failures++
		c.Failure = &junitProblem{Message: res.Summary, Type: "failure", Text: res.Summary + "\n" + res.Output}
	}
	s.Time = fmt.Sprintf("%.3f", s.elapsed)
	s.Cases = append(s.Cases, c)
}

func (r *junitReporter) end(int, int) {
	all := junitSuites{Name: "ipcscript test", Timestamp: junitTime(r.started), Suites: r.suites,
		Time: fmt.Sprintf("%.3f", time.Since(r.started).Seconds())}
	for _, s := range r.suites {
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Errors += s.Errors
	}
	r.w.Write(all.appendXML(nil))
}

// appendXML writes the report as encoding/xml's Encoder with Indent("",
// "  ") would (TestJUnitXMLAsEncodingXML holds the two equal), by hand:
// encoding/xml's package initialisation ran at the start of every process
// of every run, for a report only `ipcscript test --junit` writes.
func (all *junitSuites) appendXML(b []byte) []byte {
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"...)
	b = append(b, "<testsuites"...)
	b = xmlAttr(b, "name", all.Name)
	b = xmlCounts(b, all.Tests, all.Failures, all.Errors, all.Skipped)
	b = xmlAttr(b, "time", all.Time)
	b = xmlAttr(b, "timestamp", all.Timestamp)
	b = append(b, '>')
	for _, s := range all.Suites {
		b = append(b, "\n  <testsuite"...)
		b = xmlAttr(b, "name", s.Name)
		b = xmlCounts(b, s.Tests, s.Failures, s.Errors, s.Skipped)
		b = xmlAttr(b, "time", s.Time)
		b = xmlAttr(b, "timestamp", s.Timestamp)
		if s.Hostname != "" {
			b = xmlAttr(b, "hostname", s.Hostname)
		}
		b = append(b, '>')
		for _, c := range s.Cases {
			b = append(b, "\n    <testcase"...)
			b = xmlAttr(b, "name", c.Name)
			b = xmlAttr(b, "classname", c.Classname)
			b = xmlAttr(b, "time", c.Time)
			if c.File != "" {
				b = xmlAttr(b, "file", c.File)
			}
			b = append(b, '>')
			inner := false
			for _, p := range []struct {
				tag string
				p   *junitProblem
			}{{"error", c.Error}, {"failure", c.Failure}} {
				if p.p == nil {
					continue
				}
				b = append(b, "\n      <"+p.tag...)
				b = xmlAttr(b, "message", p.p.Message)
				b = xmlAttr(b, "type", p.p.Type)
				b = append(b, '>')
				b = xmlEscape(b, p.p.Text)
				b = append(b, "</"+p.tag+">"...)
				inner = true
			}
			if c.Output != "" {
				b = append(b, "\n      <system-out>"...)
				b = xmlEscape(b, c.Output)
				b = append(b, "</system-out>"...)
				inner = true
			}
			if inner {
				b = append(b, "\n    "...)
			}
			b = append(b, "</testcase>"...)
		}
		if len(s.Cases) > 0 {
			b = append(b, "\n  "...)
		}
		b = append(b, "</testsuite>"...)
	}
	if len(all.Suites) > 0 {
		b = append(b, '\n')
	}
	return append(b, "</testsuites>\n"...)
}

func xmlCounts(b []byte, tests, failures, errors, skipped int) []byte {
	b = xmlAttr(b, "tests", strconv.Itoa(tests))
	b = xmlAttr(b, "failures", strconv.Itoa(failures))
	b = xmlAttr(b, "errors", strconv.Itoa(errors))
	return xmlAttr(b, "skipped", strconv.Itoa(skipped))
}

func xmlAttr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = xmlEscape(b, value)
	return append(b, '"')
}

// xmlEscape appends s escaped as encoding/xml escapes text and attribute
// values: the five markup characters, tab, newline and carriage return as
// character references, and what XML cannot hold (invalid UTF-8, control
// characters) as U+FFFD.
func xmlEscape(b []byte, s string) []byte {
	for _, r := range s {
		switch r {
		case '"':
			b = append(b, "&#34;"...)
		case '\'':
			b = append(b, "&#39;"...)
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '\t':
			b = append(b, "&#x9;"...)
		case '\n':
			b = append(b, "&#xA;"...)
		case '\r':
			b = append(b, "&#xD;"...)
		default:
			if r < 0x20 || r >= 0xD800 && r < 0xE000 || r == 0xFFFE || r == 0xFFFF {
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// traceFileFor names the trace of test file f in dir: its path with the
// separators replaced, so tests of the same name in different directories
// do not overwrite each other's.
func traceFileFor(dir, f string) string {
	name := strings.TrimSuffix(filepath.ToSlash(filepath.Clean(f)), ".lua")
	name = strings.TrimLeft(strings.ReplaceAll(strings.ReplaceAll(name, "../", ""), "/", "_"), "._")
	return filepath.Join(dir, name+".jsonl")
}
