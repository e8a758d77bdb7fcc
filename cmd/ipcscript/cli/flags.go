package cli

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ipcscript/ipcscript/runtime"
	"github.com/ipcscript/ipcscript/trace"
)

// settings holds every flag's value. Each command registers the flags it
// takes in addFlags, and options turns them into runtime.Options: adding a
// flag touches this file only (see the package doc).
type settings struct {
	command string // "run", "check" or "test"

	timeout  string
	quiet    bool
	noPrefix bool
	asJSON   bool
	failFast bool
	verbose  bool
	race     bool
	output   string // test: text, tap, junit, json
	progress string // auto, always, never

	traceFile  string // run: record into this file (its extension picks the view)
	traceDir   string // test: one .jsonl trace per test file here
	traceLimit int    // .mmd views: at most this many events

	sandbox   bool // run and test: --sandbox and its limits (issue 13)
	maxProcs  int
	cpuLimit  int
	memLimit  int // MiB
	maxFiles  int
	maxOutput int // MiB
}

// addFlags registers the flags command takes. The switch is the one place
// that says which command takes which flag.
func (s *settings) addFlags(fs *pflag.FlagSet, command string) {
	s.command = command
	switch command {
	case "run", "test":
		fs.StringVar(&s.timeout, "timeout", "", "stop the run after `DURATION` (10s, 1m, or seconds: 2.5); exit 124")
		fs.BoolVarP(&s.quiet, "quiet", "q", false, "no runtime messages on stderr except errors")
		fs.BoolVar(&s.noPrefix, "no-prefix", false, "do not prefix each process's output lines with [name]")
		fs.BoolVar(&s.failFast, "fail-fast", false, "stop every process as soon as one fails")
		fs.BoolVar(&s.race, "race", false, "report unsynchronized shared-memory accesses between processes (docs/CHECKING.md); exit 4")
		fs.BoolVarP(&s.verbose, "verbose", "v", false, "the full Lua traceback of a failing process; test: every test's output")
		fs.BoolVar(&s.sandbox, "sandbox", false, "run someone else's script: no programs, files only in the run directory, no network beyond the run's own listeners, limits below (Lua, Landlock, seccomp)")
		fs.IntVar(&s.maxProcs, "max-procs", 0, "at most `N` processes live at once, declared and spawned (default 4000, fewer if ulimit -n is low; at most 4095)")
		fs.IntVar(&s.cpuLimit, "cpu-limit", 0, "--sandbox: CPU `SECONDS` per process (default 60)")
		fs.IntVar(&s.memLimit, "mem-limit", 0, "--sandbox: address space per process in `MIB` (default 4096)")
		fs.IntVar(&s.maxFiles, "max-files", 0, "--sandbox: open files per process (default 256)")
		fs.IntVar(&s.maxOutput, "max-output", 0, "--sandbox: output per process in `MIB` (default 16)")
	}
	switch command {
	case "run", "test", "trace":
		fs.IntVar(&s.traceLimit, "trace-limit", 0, fmt.Sprintf("with a .mmd trace: show at most `N` events, the first and last halves (default %d)", trace.DefaultMermaidLimit))
	}
	switch command {
	case "run":
		fs.BoolVar(&s.asJSON, "json", false, "print the report as JSON on stdout (the script's output goes to stderr)")
		fs.StringVar(&s.traceFile, "trace", "", "record every IPC operation into `FILE`; its extension picks the view: .jsonl .json .shiviz .mmd .html")
		fs.StringVar(&s.progress, "progress", "auto", "a status line on stderr during long runs: `WHEN` is auto (if stderr is a terminal), always or never")
	case "check":
		fs.BoolVar(&s.asJSON, "json", false, "print the declarations as JSON on stdout")
	case "test":
		fs.StringVar(&s.traceDir, "trace-dir", "", "record each test file's run as a .jsonl trace in `DIR`")
		fs.StringVarP(&s.output, "output", "o", "text", "report `FORMAT`: text, tap (TAP 14), junit (XML) or json (the go test -json event stream)")
	}
}

// options turns the flags into runtime.Options for a run.
func (s *settings) options() (runtime.Options, error) {
	o := runtime.Options{Quiet: s.quiet, NoPrefix: s.noPrefix, FailFast: s.failFast, Verbose: s.verbose, Race: s.race}
	for _, n := range []struct {
		name string
		v    int
	}{{"max-procs", s.maxProcs}, {"cpu-limit", s.cpuLimit}, {"mem-limit", s.memLimit}, {"max-files", s.maxFiles}, {"max-output", s.maxOutput}} {
		if n.v < 0 {
			return o, usagef("--%s %d: must not be negative", n.name, n.v)
		}
	}
	o.MaxProcs = s.maxProcs
	o.Sandbox = runtime.Sandbox{Enabled: s.sandbox, CPUSeconds: s.cpuLimit, AddressSpace: int64(s.memLimit) << 20,
		OpenFiles: s.maxFiles, OutputBytes: int64(s.maxOutput) << 20}
	if s.timeout != "" {
		d, err := parseDuration(s.timeout)
		if err != nil {
			return o, usagef("--timeout %q: %v", s.timeout, err)
		}
		o.Timeout = d
	}
	o.Trace.Path, o.Trace.Limit = s.traceFile, s.traceLimit
	if s.traceFile != "" {
		if _, err := trace.FormatOf(s.traceFile); err != nil {
			return o, usagef("--trace: %v", err)
		}
	}
	if s.traceDir != "" {
		if err := os.MkdirAll(s.traceDir, 0o755); err != nil {
			return o, usagef("--trace-dir: %v", err)
		}
		o.Trace.Path = s.traceDir // runTests names a file in it per test
	}
	switch s.output {
	case "", "text", "tap", "junit", "json":
	default:
		return o, usagef("-o %q: want text, tap, junit or json", s.output)
	}
	switch s.progress {
	case "", "auto", "always", "never":
	default:
		return o, usagef("--progress %q: want auto, always or never", s.progress)
	}
	return o, nil
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

// flagUsages is pflag's flag list without the "[=true|false]" it appends to
// every boolean flag (blanked, so the columns stay aligned).
func flagUsages(fs *pflag.FlagSet) string {
	return strings.ReplaceAll(fs.FlagUsages(), "[=true|false]", strings.Repeat(" ", len("[=true|false]")))
}
