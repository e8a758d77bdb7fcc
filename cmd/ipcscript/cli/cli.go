// Package cli is the ipcscript command line: flags in, runtime.Options out,
// an exit code back. It lives apart from main so tests can run it in-process.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/ipcscript/ipcscript/runtime"
	"github.com/ipcscript/ipcscript/trace"
)

// version is set at build time with -ldflags "-X github.com/ipcscript/ipcscript/cmd/ipcscript/cli.version=...".
var version = "0.1.0-dev"

const usage = `ipcscript runs a Lua script whose processes are real OS processes, connected
by pipes, mailboxes, message queues, semaphores, shared memory and sockets.

Usage:
  ipcscript [run] [flags] file.lua [-- script args]   run a script
  ipcscript check file.lua                            list its processes and objects; launch nothing
  ipcscript test [-o text|tap|junit|json] [paths...]  run exercise scripts (*_test.lua); each passes or fails
  ipcscript trace convert IN.jsonl OUT.html           turn a recorded run into a view (.json .shiviz .mmd .html)
  ipcscript version                                   print the version

Examples:
  ipcscript scripts/pipeline.lua
  ipcscript run --timeout 5s scripts/fanout.lua -- 8
  ipcscript --json scripts/pipeline.lua > report.json
  ipcscript check scripts/pipeline.lua
  ipcscript test -o junit exercises/ > results.xml

Flags:
%s
Exit codes:
  0 success   1 a process or an expectation failed   2 usage   3 deadlock   4 data race (--race)
  65 the script does not load   124 timeout   130 interrupted   143 terminated
`

// Main runs the command line and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) (code int) {
	defer runtime.RecoverInternal(stderr, &code) // a panic exits 70, not Go's 2 (usage)
	fs := pflag.NewFlagSet("ipcscript", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SetInterspersed(false) // flags after the script name belong to the script
	timeout := fs.String("timeout", "", "stop the run after this long (e.g. 10s, 1m, or seconds: 2.5); exit 124")
	quiet := fs.BoolP("quiet", "q", false, "no runtime messages on stderr except errors")
	noPrefix := fs.Bool("no-prefix", false, "do not prefix each process's output lines with [name]")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout (process output goes to stderr)")
	failFast := fs.Bool("fail-fast", false, "stop every process as soon as one fails")
	output := fs.StringP("output", "o", "text", "test: report format: text, tap, junit or json")
	verbose := fs.BoolP("verbose", "v", false, "test: show every test's output, not only the failures'")
	traceFile := fs.String("trace", "", "record every IPC operation into this file; its extension picks the view: .jsonl .json .shiviz .mmd .html")
	traceDir := fs.String("trace-dir", "", "test: record each test file's run as a .jsonl trace in this directory")
	traceLimit := fs.Int("trace-limit", 0, "with --trace x.mmd: show at most this many events (default 2000)")
	race := fs.Bool("race", false, "report unsynchronized shared-memory accesses between processes (docs/CHECKING.md); exit 4")
	help := fs.BoolP("help", "h", false, "show this help")
	fs.Usage = func() { fmt.Fprintf(stderr, usage, flagUsages(fs)) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return runtime.ExitOK
		}
		fmt.Fprintf(stderr, "ipcscript: %v\nRun 'ipcscript --help' for usage.\n", err)
		return runtime.ExitUsage
	}
	if *help {
		fmt.Fprintf(stdout, usage, flagUsages(fs))
		return runtime.ExitOK
	}
	rest := fs.Args()
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "ipcscript: "+format+"\nRun 'ipcscript --help' for usage.\n", a...)
		return runtime.ExitUsage
	}
	if len(rest) == 0 {
		return usageErr("no script given")
	}
	if rest[0] == "trace" {
		return runTrace(rest[1:], stdout, stderr)
	}
	cmd := "run"
	switch rest[0] {
	case "run", "check", "test", "version":
		cmd, rest = rest[0], rest[1:]
		if cmd != "version" {
			// flags may also follow the subcommand: ipcscript run --timeout 2 x.lua
			if err := fs.Parse(rest); err != nil {
				if errors.Is(err, pflag.ErrHelp) {
					return runtime.ExitOK
				}
				return usageErr("%v", err)
			}
			if *help {
				fmt.Fprintf(stdout, usage, flagUsages(fs))
				return runtime.ExitOK
			}
			rest = fs.Args()
		}
	}
	if cmd == "version" {
		fmt.Fprintln(stdout, "ipcscript", version)
		return runtime.ExitOK
	}
	if cmd != "test" && len(rest) == 0 {
		return usageErr("%s: no script given", cmd)
	}
	// `ipcscript x.lua | head`: a write to a closed stdout must not kill the
	// supervisor before it has stopped its children and removed its objects.
	signal.Ignore(syscall.SIGPIPE)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			name := "interrupt"
			if s == syscall.SIGTERM {
				name = "terminated"
			}
			cancel(runtime.SignalCause{Name: name})
		}
	}()
	if cmd == "test" {
		opts := runtime.Options{Quiet: *quiet, NoPrefix: *noPrefix, FailFast: *failFast, Race: *race}
		opts.Trace.Limit = *traceLimit
		if *traceDir != "" {
			if err := os.MkdirAll(*traceDir, 0o755); err != nil {
				fmt.Fprintf(stderr, "ipcscript test: --trace-dir: %v\n", err)
				return runtime.ExitUsage
			}
		}
		opts.Trace.Path = *traceDir // runTests names a file in it per test
		if *timeout != "" {
			d, err := parseDuration(*timeout)
			if err != nil {
				return usageErr("--timeout %q: %v", *timeout, err)
			}
			opts.Timeout = d
		}
		return runTests(ctx, rest, *output, *verbose, opts, stdout, stderr)
	}
	script, scriptArgs := rest[0], rest[1:]
	if len(scriptArgs) > 0 && scriptArgs[0] == "--" {
		scriptArgs = scriptArgs[1:]
	}
	opts := runtime.Options{Args: scriptArgs, Stdout: stdout, Stderr: stderr, Quiet: *quiet, NoPrefix: *noPrefix, FailFast: *failFast, Race: *race}
	opts.Trace.Path, opts.Trace.Limit = *traceFile, *traceLimit
	if *traceFile != "" {
		if _, err := trace.FormatOf(*traceFile); err != nil {
			return usageErr("--trace: %v", err)
		}
	}
	if *timeout != "" {
		d, err := parseDuration(*timeout)
		if err != nil {
			return usageErr("--timeout %q: %v", *timeout, err)
		}
		opts.Timeout = d
	}
	if *asJSON {
		opts.Stdout = stderr // stdout carries only the report
	}

	if cmd == "check" {
		rep, err := runtime.Check(script, opts)
		if err != nil {
			fmt.Fprintf(stderr, "ipcscript: %v\n", err)
			return runtime.ExitFailed
		}
		if *asJSON {
			writeJSON(stdout, rep)
		} else if rep.OK {
			for _, o := range rep.Objects {
				fmt.Fprintf(stdout, "%-10s %-20q %-24s %s\n", o.Kind, o.Name, o.Line, o.Spec)
			}
			fmt.Fprintf(stdout, "%d processes: %s\n", len(rep.Processes), processNames(rep))
		}
		if !rep.OK {
			fmt.Fprintf(stderr, "ipcscript: %s\n", rep.Summary())
		}
		return rep.ExitCode()
	}

	rep, err := runtime.RunFile(ctx, script, opts)
	if err != nil {
		fmt.Fprintf(stderr, "ipcscript: %v\n", err)
		return runtime.ExitFailed
	}
	if *asJSON {
		writeJSON(stdout, rep)
	}
	if !rep.OK {
		fmt.Fprintf(stderr, "ipcscript: %s: %s\n", script, rep.Summary())
		for _, f := range rep.Failed {
			fmt.Fprintf(stderr, "ipcscript: expectation failed: %s\n", f)
		}
	}
	if rep.TracePath != "" && (!*quiet || !rep.OK) {
		fmt.Fprintf(stderr, "ipcscript: trace: %s (%d events)\n", rep.TracePath, len(rep.Trace.Events))
	}
	return rep.ExitCode()
}

// parseDuration accepts Go durations ("1m30s") and plain seconds ("2.5").
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case f != f:
			return 0, errors.New("NaN is not a number of seconds")
		case f < 0:
			return 0, errors.New("must not be negative")
		case f >= float64(math.MaxInt64)/float64(time.Second):
			return 0, fmt.Errorf("%g seconds is longer than any run can wait (at most %d)", f, math.MaxInt64/int64(time.Second)-1)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration (try 10s, 1m or 2.5)")
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

func processNames(rep *runtime.Report) string {
	var names []string
	for _, p := range rep.Processes {
		names = append(names, p.Name)
	}
	return strings.Join(names, " ")
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// flagUsages is pflag's flag list without the "[=true|false]" it appends to
// every boolean flag (blanked, so the columns stay aligned).
func flagUsages(fs *pflag.FlagSet) string {
	return strings.ReplaceAll(fs.FlagUsages(), "[=true|false]", strings.Repeat(" ", len("[=true|false]")))
}
