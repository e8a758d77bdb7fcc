package cli

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/ipcscript/ipcscript/runtime"
)

// runTests is `ipcscript test [paths...]`: every *_test.lua is a run that
// passes or fails. The text output ends with "N passed, N failed".
func runTests(ctx context.Context, paths []string, format string, verbose bool, opts runtime.Options, stdout, stderr io.Writer) int {
	files, err := runtime.FindTests(paths)
	if err != nil {
		fmt.Fprintf(stderr, "ipcscript test: %v\n", err)
		return runtime.ExitUsage
	}
	switch format {
	case "text", "tap", "junit", "json":
	default:
		fmt.Fprintf(stderr, "ipcscript test: -o %q: want text, tap, junit or json\n", format)
		return runtime.ExitUsage
	}
	if format == "tap" {
		fmt.Fprintf(stdout, "TAP version 13\n1..%d\n", len(files))
	}
	var results []runtime.TestResult
	passed, failed := 0, 0
	for i, f := range files {
		if ctx.Err() != nil {
			break
		}
		o := opts
		if opts.Trace.Path != "" { // --trace-dir: one trace per test file
			o.Trace.Path = traceFileFor(opts.Trace.Path, f)
		}
		res := runtime.RunTest(ctx, f, o)
		results = append(results, res)
		if res.Passed {
			passed++
		} else {
			failed++
		}
		switch format {
		case "text":
			if res.Passed {
				fmt.Fprintf(stdout, "PASS %s (%.2fs)\n", f, res.Elapsed)
			} else {
				fmt.Fprintf(stdout, "FAIL %s (%.2fs): %s\n", f, res.Elapsed, res.Summary)
				if res.Report != nil && res.Report.TracePath != "" {
					fmt.Fprintf(stdout, "    trace: %s\n", res.Report.TracePath)
				}
			}
			if !res.Passed || verbose {
				fmt.Fprint(stdout, indent(res.Output, "    "))
			}
		case "tap":
			status := "ok"
			if !res.Passed {
				status = "not ok"
			}
			fmt.Fprintf(stdout, "%s %d - %s\n", status, i+1, f)
			if !res.Passed {
				fmt.Fprintf(stdout, "  ---\n  message: %q\n  ...\n", res.Summary)
			}
			if !res.Passed || verbose {
				fmt.Fprint(stdout, indent(res.Output, "# "))
			}
		}
	}
	switch format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"passed": passed, "failed": failed, "tests": results})
	case "junit":
		writeJUnit(stdout, results, passed, failed)
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "ipcscript test: interrupted\n")
		return runtime.ExitInterrupted
	}
	if format == "text" || format == "tap" {
		fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	} else {
		fmt.Fprintf(stderr, "%d passed, %d failed\n", passed, failed)
	}
	if failed > 0 {
		return runtime.ExitFailed
	}
	return runtime.ExitOK
}

func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, prefix) + "\n"
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Time    string        `xml:"time,attr"`
	Failure *junitFailure `xml:"failure,omitempty"`
	Output  string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(w io.Writer, results []runtime.TestResult, passed, failed int) {
	s := junitSuite{Name: "ipcscript", Tests: passed + failed, Failures: failed}
	for _, r := range results {
		c := junitCase{Name: r.File, Time: fmt.Sprintf("%.3f", r.Elapsed), Output: r.Output}
		if !r.Passed {
			c.Failure = &junitFailure{Message: r.Summary, Text: r.Output}
		}
		s.Cases = append(s.Cases, c)
	}
	fmt.Fprint(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	enc.Encode(s)
	fmt.Fprintln(w)
}

// traceFileFor names the trace of test file f in dir: its path with the
// separators replaced, so tests of the same name in different directories
// do not overwrite each other's.
func traceFileFor(dir, f string) string {
	name := strings.TrimSuffix(filepath.ToSlash(filepath.Clean(f)), ".lua")
	name = strings.TrimLeft(strings.ReplaceAll(strings.ReplaceAll(name, "../", ""), "/", "_"), "._")
	return filepath.Join(dir, name+".jsonl")
}
