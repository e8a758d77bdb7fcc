// Command bench measures ipcscript against its peers on this machine and
// prints one table: for each case, ipcscript from Lua, ipcscript from the Go
// API, Python multiprocessing and C over the same kernel mechanism, with
// the ratios ipcscript/peer.
//
//	go run ./tests/bench                  # the whole table, a few minutes
//	go run ./tests/bench --quick          # a smoke run with tiny counts
//	go run ./tests/bench --skip-ipcscript # the peers only
//	go run ./tests/bench --cases rtt,bulk --repeats 3 --json
//
// It builds what it needs into a temporary directory (the C peers with the
// system's cc, the ipcscript binary with go build), runs every cell
// --repeats times (the implementations of a case take turns within each
// repeat), and shows the median with the spread. Every program measures
// itself around its measured loop only and prints one JSON line; the
// harness only adds the peak RSS it samples from /proc for the memory rows.
// See README.md beside this file.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	dispatchChild()
	os.Exit(benchMain(os.Args[1:]))
}

type options struct {
	repeats       int
	repeatsSet    bool // --repeats given: every row takes that many
	quick         bool
	json          bool
	cases         string
	impls         string
	skipIpcscript bool
	ipcscript     string
	cc, python    string
	timeout       time.Duration
	root          string
	verbose       bool
	list          bool
	ab            string // ab.go: "trace", a git revision or a binary
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.repeats, "repeats", 0, "runs per cell (default 5 for the cells a target reads and 3 for the others, or 1 with --quick)")
	fs.BoolVar(&o.quick, "quick", false, "tiny counts and one repeat: a smoke run for CI")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON on stdout instead of the table")
	fs.StringVar(&o.cases, "cases", "", "comma-separated filters: a case id prefix (rtt, rtt-pipe, bulk), a group number (1-6), or a regexp matched against id and title")
	fs.StringVar(&o.impls, "impls", "lua,go,py,c", "implementations to run")
	fs.BoolVar(&o.skipIpcscript, "skip-ipcscript", false, "do not build or run the ipcscript binary (the Lua column)")
	fs.StringVar(&o.ipcscript, "ipcscript", "", "use this ipcscript binary instead of building ./cmd/ipcscript")
	fs.StringVar(&o.cc, "cc", "cc", "C compiler for the C peers")
	fs.StringVar(&o.python, "python", "python3", "Python for the Python peers")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "limit for one run of one cell")
	fs.StringVar(&o.root, "root", "", "the module's root directory (default: found from the working directory)")
	fs.BoolVar(&o.verbose, "v", false, "print every run on stderr")
	fs.BoolVar(&o.list, "list", false, "list the cases and exit")
	fs.StringVar(&o.ab, "ab", "", "A/B the selected cases' Lua cells in turns: \"trace\" (with --trace ÷ without), a git revision or an ipcscript binary (this tree ÷ it)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	o.repeatsSet = o.repeats != 0
	if o.repeats == 0 {
		o.repeats = 5
		if o.quick {
			o.repeats = 1
		}
	}
	if o.repeats < 1 {
		return o, fmt.Errorf("--repeats must be at least 1")
	}
	return o, nil
}

func benchMain(args []string) int {
	o, err := parseFlags(args)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	sz := fullSizes
	if o.quick {
		sz = quickSizes
	}
	cases, err := selectCases(allCases(sz), o.cases)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if o.list {
		for _, c := range cases {
			fmt.Printf("%-16s %d  %s\n", c.id, c.group, c.title)
		}
		return 0
	}
	enabled, err := parseImpls(o.impls)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if o.skipIpcscript {
		enabled[implLua] = false
	}
	if o.ab != "" { // the Lua cells only
		enabled = [numImpls]bool{implLua: true}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newBench(ctx, o, enabled)
	if b != nil {
		defer b.close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if o.ab != "" {
		return b.runAB(ctx, cases, os.Stdout)
	}
	res := b.runAll(ctx, cases)
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "bench: interrupted")
		return 130
	}
	if o.json {
		if err := writeJSON(os.Stdout, res); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	} else {
		writeTable(os.Stdout, res)
	}
	if res.failed() {
		return 1
	}
	return 0
}

func parseImpls(s string) ([numImpls]bool, error) {
	var on [numImpls]bool
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		found := false
		for i, k := range implKeys {
			if name == k {
				on[i], found = true, true
			}
		}
		if !found {
			return on, fmt.Errorf("--impls: unknown implementation %q (want lua, go, py, c)", name)
		}
	}
	return on, nil
}

// selectCases keeps the cases matching any of the comma-separated filters.
func selectCases(all []benchCase, filter string) ([]benchCase, error) {
	if strings.TrimSpace(filter) == "" {
		return all, nil
	}
	var out []benchCase
	var res []*regexp.Regexp
	var words []string
	for _, f := range strings.Split(filter, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		re, err := regexp.Compile(f)
		if err != nil {
			return nil, fmt.Errorf("--cases: %v", err)
		}
		res = append(res, re)
		words = append(words, f)
	}
	for _, c := range all {
		for i, w := range words {
			if strings.HasPrefix(c.id, w) || w == fmt.Sprint(c.group) || res[i].MatchString(c.id) || res[i].MatchString(c.title) {
				out = append(out, c)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--cases %q matches no case (see --list)", filter)
	}
	return out, nil
}

// bench holds what the runs need: the built programs and where they run.
type bench struct {
	o        options
	enabled  [numImpls]bool
	tmp      string
	work     string // working directory of every run
	root     string
	cBins    map[string]string
	ipc      string  // the ipcscript binary, "" when there is none
	python   string  // the Python interpreter's executable
	self     string  // this binary, for the Go column
	mingo    string  // an empty Go program, for the floors; "" when not built
	notBuilt string  // why there is no ipcscript binary
	mach     machine // where the figures were taken
	start    time.Time
}

func newBench(ctx context.Context, o options, enabled [numImpls]bool) (*bench, error) {
	b := &bench{o: o, enabled: enabled, start: time.Now()}
	if err := becomeSubreaper(); err != nil {
		return nil, err
	}
	var err error
	if b.root = o.root; b.root == "" {
		if b.root, err = moduleRoot(); err != nil {
			return nil, err
		}
	}
	if b.tmp, err = os.MkdirTemp("", "ipcscript-bench-"); err != nil {
		return nil, err
	}
	b.work = filepath.Join(b.tmp, "work")
	if err := os.Mkdir(b.work, 0o700); err != nil {
		return b, err
	}
	if b.self, err = os.Executable(); err != nil {
		return b, err
	}
	b.mach = describeMachine(o.cc, o.python)
	if load, err := strconv.ParseFloat(b.mach.Load, 64); err == nil && load > 0.5 {
		progress("the machine is busy (load average %.2f on %d CPUs): expect noisy figures", load, b.mach.CPUs)
	}
	if enabled[implPy] {
		// The real interpreter, not a shim (pyenv's python3 is a shell
		// script that runs helpers first, which the memory rows would count).
		exe, err := exec.CommandContext(ctx, o.python, "-c", "import sys; print(sys.executable)").Output()
		if err != nil {
			return b, fmt.Errorf("%s: %v", o.python, err)
		}
		b.python = strings.TrimSpace(string(exe))
	}

	// The builds run at once (the Go builds are mostly cached; the C
	// peers are a compiler each).
	var wg sync.WaitGroup
	var cErr error
	if enabled[implC] {
		progress("building the C peers with %s -O2", o.cc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.cBins, cErr = buildC(ctx, o.cc, filepath.Join(b.root, "tests/bench/peers/c"), b.tmp)
		}()
	}
	// The Lua column runs the ipcscript binary; the Go column's bare
	// re-exec row starts it too.
	switch {
	case o.skipIpcscript, !enabled[implLua] && !enabled[implGo]:
		b.notBuilt = "skipped"
	case o.ipcscript != "":
		b.ipc = o.ipcscript
	default:
		progress("building ./cmd/ipcscript")
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := filepath.Join(b.tmp, "ipcscript")
			if err := buildIpcscript(ctx, b.root, out); err != nil {
				b.notBuilt = "not built: " + err.Error()
				progress("no Lua column: %v", err)
			} else {
				b.ipc = out
			}
		}()
	}
	if enabled[implGo] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := filepath.Join(b.tmp, "mingo")
			if err := buildMinimalGo(ctx, b.root, out); err != nil {
				progress("no minimal Go floor: %v", err)
			} else {
				b.mingo = out
			}
		}()
	}
	wg.Wait()
	if cErr != nil {
		return b, cErr
	}
	return b, nil
}

// close removes the temporary directory and anything a run left in the
// kernel's name spaces, and says what it found there.
func (b *bench) close() {
	sweep(0, time.Second)
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
}

// argv returns how to run cmd for im, or why it cannot run.
func (b *bench) argv(im impl, cmd *command) (argv, env []string, why string) {
	switch im {
	case implC:
		bin, ok := b.cBins[cmd.prog]
		if !ok {
			return nil, nil, "no C peer " + cmd.prog
		}
		argv = []string{bin}
		for _, a := range cmd.args {
			if name, ok := strings.CutPrefix(a, "@"); ok { // another C peer's path
				if a, ok = b.cBins[name]; !ok {
					return nil, nil, "no C peer " + name
				}
			}
			argv = append(argv, a)
		}
		return argv, nil, ""
	case implPy:
		script := filepath.Join(b.root, "tests/bench/peers/py", cmd.prog)
		// -S: no site module. The peers use the standard library only,
		// and what a machine's site-packages runs at start is not
		// Python's cost (here a .pth hook imported certifi at every
		// interpreter start: 35 ms, 2/3 of a spawned process, in every
		// run and every spawned worker). multiprocessing passes the flag
		// on to the interpreters it starts.
		return append([]string{b.python, "-S", script}, cmd.args...), []string{"PYTHONDONTWRITEBYTECODE=1"}, ""
	case implLua:
		if b.ipc == "" {
			return nil, nil, "ipcscript " + b.notBuilt
		}
		script := filepath.Join(b.root, "tests/bench/lua", cmd.prog+".lua")
		argv := []string{b.ipc, "run", "--no-prefix", "--quiet"}
		for _, f := range cmd.flags { // "@tmp/x": a file in the harness's temporary directory
			if rest, ok := strings.CutPrefix(f, "@tmp/"); ok {
				f = filepath.Join(b.tmp, rest)
			}
			argv = append(argv, f)
		}
		return append(append(argv, script, "--"), cmd.args...), nil, ""
	case implGo:
		if _, ok := goCases[cmd.prog]; !ok {
			return nil, nil, "Go API case not wired"
		}
		env := []string{envGoCase + "=" + cmd.prog}
		if b.mingo != "" {
			env = append(env, envMinGo+"="+b.mingo)
		}
		if goNeedsIpcscript[cmd.prog] {
			if b.ipc == "" {
				return nil, nil, "ipcscript " + b.notBuilt
			}
			env = append(env, envIpcscriptBin+"="+b.ipc)
		}
		argv := []string{b.self}
		for _, a := range cmd.args { // "@tmp/x": a file in the harness's temporary directory
			if rest, ok := strings.CutPrefix(a, "@tmp/"); ok {
				a = filepath.Join(b.tmp, rest)
			}
			argv = append(argv, a)
		}
		return argv, env, ""
	}
	panic("unknown implementation")
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
