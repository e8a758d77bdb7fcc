// Package cli is the ipcscript command line: flags in, runtime.Options out,
// an exit code back. It lives apart from main so tests can run it in-process.
//
// The commands are a small tree (command.go) over pflag flag sets: one
// definition gives per-command help, `help [cmd]`, shell completion
// (complete.go) and "did you mean" for commands, and man.go writes the man
// page from the same definitions. Each Main builds a fresh command tree,
// so tests can call it many times.
//
// # Adding a flag
//
// Everything is in flags.go: add a field to settings, register the flag in
// settings.addFlags under the commands that take it (the switch there is the
// only list of which command takes which flag), and read it in
// settings.options (or where the command uses it). Help, completion and the
// man page pick it up; regenerate docs/ipcscript.1 with
// `go run ./cmd/ipcscript man > docs/ipcscript.1` (a test checks it is up
// to date).
//
// Flags go before the script: `ipcscript run --timeout 5s x.lua -- 8`.
// Whatever follows the script is the script's (after --); a flag there is
// rejected with a hint rather than silently handed to the script.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/ipcscript/ipcscript/runtime"
)

// version is set at build time with -ldflags "-X github.com/ipcscript/ipcscript/cmd/ipcscript/cli.version=...".
var version = "0.1.0-dev"

// exitError carries an exit code out of a command. A message, if any, is
// printed to stderr as "ipcscript: message".
type exitError struct {
	code int
	msg  string
	hint string // a second line: what to do about it
}

func (e *exitError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &exitError{code: runtime.ExitUsage, msg: fmt.Sprintf(format, a...)}
}

// Run is the command line as a process: main calls it first thing and
// exits with what it returns. SIGINT, SIGTERM, SIGHUP and SIGQUIT are
// handled from here until the process exits, never reset: one arriving at
// any moment (while the flags are parsed, the run starts, its processes
// are stopped, or what they left is killed) stops the run, cleans up and
// exits 128+n. Only the Go runtime's start, before main, is left: no
// process or object of a run exists yet, and the signal's default action
// ends the process.
func Run(args []string, stdout, stderr io.Writer) int {
	ctx, caught, _ := signalContext()
	runtime.NotDumpable()    // the supervisor holds every object of the run
	runtime.OwnDescendants() // what a run leaves behind comes to us (EndDescendants)
	code := MainContext(ctx, args, stdout, stderr)
	runtime.EndDescendants() // whatever a run left behind goes with us
	if s := caught(); s != 0 {
		return 128 + int(s)
	}
	return code
}

// Main runs the command line in-process and returns the exit code. The
// signals are handled only while it runs; a program that is ipcscript
// calls Run.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, _, stop := signalContext()
	defer stop()
	return MainContext(ctx, args, stdout, stderr)
}

// MainContext runs the command line with ctx, which a host cancels (with
// a runtime.SignalCause) to stop the run.
func MainContext(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer runtime.RecoverInternal(stderr, &code) // a panic exits 70, not Go's 2 (usage)
	root := newRoot(ctx, stdout, stderr)
	root.helpCommand = newHelpCmd()
	root.addCommand(root.helpCommand, newCompletionCmd())
	addCompleteCmd(root, args)
	cmd, args := root.find(args)
	err := cmd.execute(args)
	if errors.Is(err, errHelp) {
		writeHelp(stdout, cmd)
		return runtime.ExitOK
	}
	if err == nil {
		return runtime.ExitOK
	}
	usageHint := "Run 'ipcscript --help' for usage."
	if cmd != root {
		usageHint = fmt.Sprintf("Run '%s --help' for usage.", cmd.path())
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// The other errors (too many arguments, an unknown command to
		// help) are usage errors.
		ee = &exitError{code: runtime.ExitUsage, msg: err.Error(), hint: usageHint}
	}
	if ee.msg != "" {
		fmt.Fprintf(stderr, "ipcscript: %s\n", ee.msg)
	}
	if ee.hint != "" {
		fmt.Fprintln(stderr, ee.hint)
	} else if ee.code == runtime.ExitUsage {
		fmt.Fprintln(stderr, usageHint)
	}
	return ee.code
}

const exitCodes = `Exit codes:
  0 success            1 a process or an expectation failed   2 usage
  3 deadlock           4 a shared-memory race (--race)        5 test: no tests found
  65 the script does not load, or fails before ipc.run()
  66 the script file cannot be read
  70 internal error    124 timeout
  129 hangup  130 interrupt (Ctrl-C)  131 quit  143 terminated
`

// newRoot builds the command tree. The root command runs a script, as
// `run` does: `ipcscript x.lua` is `ipcscript run x.lua`. MainContext adds
// `help`, `completion` and, when it is called, `__complete`.
func newRoot(ctx context.Context, stdout, stderr io.Writer) *command {
	root := &command{
		use:   "ipcscript [flags] file.lua [-- script args]",
		short: "run Lua scripts whose processes are real OS processes",
		long: `ipcscript runs a Lua script whose processes are real OS processes, connected
by pipes, mailboxes, message queues, semaphores, shared memory and sockets.
'ipcscript file.lua' is short for 'ipcscript run file.lua'.`,
		example: `  ipcscript scripts/pipeline.lua
  ipcscript run --timeout 1m scripts/fanout.lua -- 8
  ipcscript --json scripts/pipeline.lua > report.json
  ipcscript check scripts/pipeline.lua
  ipcscript test -o junit exercises/ > results.xml
  ipcscript help test`,
		version: version,
		// A script, or a command: complete both.
		complete: completeScript,
		out:      stdout,
		errOut:   stderr,
	}

	var rs settings
	rs.addFlags(root.flagSet(), "run")
	root.flagSet().SetInterspersed(false) // what follows the script is the script's
	root.run = func(c *command, args []string) error {
		if len(args) == 0 {
			return usagef("no script given")
		}
		return runScript(ctx, c, &rs, args, stdout, stderr)
	}

	var run settings
	runCmd := &command{
		use:   "run [flags] file.lua [-- script args]",
		short: "run a script (the default command)",
		long: `Run a script: its declarations create the kernel objects, ipc.run() starts
its processes, and the run ends when every process has exited. Each
process's output lines are prefixed with [name]. On failure, a summary on
stderr says which process failed and why, with a Lua traceback (-v: all of it).`,
		example: `  ipcscript run scripts/pipeline.lua
  ipcscript run --timeout 1m scripts/fanout.lua -- 8
  ipcscript run --json scripts/pipeline.lua > report.json`,
		complete: completeLua,
		run: func(c *command, args []string) error {
			if len(args) == 0 {
				return usagef("run: no script given")
			}
			return runScript(ctx, c, &run, args, stdout, stderr)
		},
	}
	run.addFlags(runCmd.flagSet(), "run")
	runCmd.flagSet().SetInterspersed(false)

	var chk settings
	checkCmd := &command{
		use:   "check [flags] file.lua",
		short: "list a script's processes and objects; launch nothing",
		long: `Load a script and list its declarations (kind, name, line, parameters) and
its processes, without creating any object or starting any process.`,
		example:  `  ipcscript check scripts/pipeline.lua`,
		complete: completeLua,
		run: func(c *command, args []string) error {
			if len(args) != 1 {
				return usagef("check: want one script, got %d arguments", len(args))
			}
			return checkScript(&chk, args[0], stdout, stderr)
		},
	}
	chk.addFlags(checkCmd.flagSet(), "check")

	var tst settings
	testCmd := &command{
		use:   "test [flags] [paths...]",
		short: "run test scripts (*_test.lua); each passes or fails",
		long: `Run every *_test.lua under the given paths (a file is taken as given, a
directory is searched; no path means the current directory). A test passes
when its run is ok: every process exited 0, no expectation failed, and no
deadlock or timeout happened that the script did not declare as expected
(ipc.run{expect = ...}). The text report ends with "N passed, N failed";
-o tap writes TAP 14, -o junit JUnit XML, -o json the event stream of
'go test -json' (gotestsum and CI dashboards read it). Exit 5 when no test
is found.`,
		example: `  ipcscript test exercises/
  ipcscript test exercises/01_processes
  ipcscript test -o tap exercises/ > results.tap
  ipcscript test -o junit exercises/ > results.xml
  ipcscript test -o json exercises/ > events.json; gotestsum --raw-command -- cat events.json`,
		complete: completeLua,
		run: func(c *command, args []string) error {
			return runTests(ctx, &tst, args, stdout, stderr)
		},
	}
	tst.addFlags(testCmd.flagSet(), "test")

	versionCmd := &command{
		use:   "version",
		short: "print the version",
		args:  noArgs,
		run: func(c *command, args []string) error {
			fmt.Fprintln(stdout, "ipcscript", version)
			return nil
		},
	}
	manCmd := &command{
		use:   "man",
		short: "write the man page (roff) to stdout",
		long: `Write the ipcscript(1) man page, generated from the same definitions as
--help, to stdout: 'ipcscript man > ipcscript.1; man -l ipcscript.1'.`,
		args: noArgs,
		run: func(c *command, args []string) error {
			writeMan(stdout, c.root())
			return nil
		},
	}
	root.addCommand(runCmd, checkCmd, testCmd, newTraceCmd(), versionCmd, manCmd)
	root.initHelpFlag()
	for _, c := range root.commands() {
		c.initHelpFlag() // now, so `help CMD` lists it as `CMD --help` does
	}
	return root
}

// newHelpCmd is `ipcscript help [command]`.
func newHelpCmd() *command {
	return &command{
		use:   "help [command]",
		short: "help about a command",
		long:  `Help about a command: the same text as 'ipcscript <command> --help'.`,
		args:  maximumNArgs(1),
		complete: func(c *command, args []string, _ string) ([]string, compDirective) {
			var names []string
			for _, sub := range c.root().commands() {
				names = append(names, sub.name())
			}
			return names, compNoFileComp
		},
		run: func(c *command, args []string) error {
			root := c.root()
			if len(args) == 0 {
				writeHelp(root.out, root)
				return nil
			}
			for _, sub := range root.commands() {
				if sub.name() == args[0] {
					writeHelp(root.out, sub)
					return nil
				}
			}
			e := usagef("help: no command %q", args[0])
			if sugg := root.suggestionsFor(args[0]); len(sugg) > 0 {
				e.(*exitError).hint = fmt.Sprintf("Did you mean 'ipcscript help %s'?", sugg[0])
			}
			return e
		},
	}
}

// flagError makes a flag parse error a usage error with a hint.
func flagError(c *command, err error) error {
	return &exitError{code: runtime.ExitUsage, msg: err.Error(),
		hint: fmt.Sprintf("Run '%s --help' for usage.", c.path())}
}

// scriptArgs splits what follows the flags into the script and its
// arguments. A flag among the arguments before "--" is refused: it was
// meant for ipcscript and would silently go to the script.
func scriptArgs(args []string) (string, []string, error) {
	script, rest := args[0], args[1:]
	var out []string
	for i, a := range rest {
		if a == "--" {
			return script, append(out, rest[i+1:]...), nil
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			return "", nil, &exitError{code: runtime.ExitUsage,
				msg:  fmt.Sprintf("flag %s after the script %s", a, script),
				hint: "Put flags before the script, or after -- to pass them to the script: ipcscript [flags] " + script + " -- " + a}
		}
		out = append(out, a)
	}
	return script, out, nil
}

// signalContext is cancelled with a runtime.SignalCause when SIGINT,
// SIGTERM, SIGHUP or SIGQUIT arrives; caught says which came first (0:
// none yet); stop gives the signals their default actions back.
func signalContext() (ctx context.Context, caught func() syscall.Signal, stop func()) {
	// `ipcscript x.lua | head`: a write to a closed stdout must not kill the
	// supervisor before it has stopped its children and removed its objects.
	signal.Ignore(syscall.SIGPIPE)
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	var first atomic.Int32
	go func() {
		for s := range sigs {
			name := "interrupt"
			switch s {
			case syscall.SIGTERM:
				name = "terminated"
			case syscall.SIGHUP:
				name = "hangup"
			case syscall.SIGQUIT:
				name = "quit"
			}
			first.CompareAndSwap(0, int32(s.(syscall.Signal)))
			cancel(runtime.SignalCause{Name: name})
		}
	}()
	return ctx, func() syscall.Signal { return syscall.Signal(first.Load()) },
		func() { signal.Stop(sigs); close(sigs); cancel(nil) }
}

// runScript is `ipcscript [run] file.lua`.
func runScript(ctx context.Context, c *command, s *settings, args []string, stdout, stderr io.Writer) error {
	script, sargs, err := scriptArgs(args)
	if err != nil {
		return err
	}
	if err := noSuchScript(c, script); err != nil {
		return err
	}
	opts, err := s.options()
	if err != nil {
		return err
	}
	opts.Args, opts.Stdout, opts.Stderr = sargs, stdout, stderr
	if s.asJSON {
		opts.Stdout = stderr // stdout carries only the report
	}
	setProgress(&opts, s.progress, stderr)
	rep, err := runtime.RunFile(ctx, script, opts)
	if err != nil {
		return &exitError{code: runtime.ExitSoftware, msg: err.Error()}
	}
	if s.asJSON {
		writeJSON(stdout, rep)
	}
	if !rep.OK {
		fmt.Fprintf(stderr, "ipcscript: %s\n", failureLine(rep))
		for _, line := range runtime.TracebackLines(rep.Traceback, s.verbose) {
			fmt.Fprintln(stderr, line)
		}
		for _, f := range rep.Failed {
			fmt.Fprintf(stderr, "ipcscript: expectation failed: %s\n", f)
		}
	}
	if rep.TracePath != "" && (!s.quiet || !rep.OK) {
		fmt.Fprintf(stderr, "ipcscript: trace: %s (%d events)\n", rep.TracePath, len(rep.Trace.Events))
	}
	return exitCode(rep.ExitCode())
}

// failureLine is the summary of a failed run, naming the script unless the
// message starts with it (a load error's file:line:).
func failureLine(rep *runtime.Report) string {
	sum := rep.Summary()
	if strings.HasPrefix(sum, rep.Script+":") || strings.HasPrefix(sum, "cannot read script") {
		return sum
	}
	return rep.Script + ": " + sum
}

func exitCode(code int) error {
	if code == runtime.ExitOK {
		return nil
	}
	return &exitError{code: code}
}

// noSuchScript catches `ipcscript tset`: a script that does not exist but
// reads like a mistyped command gets a hint.
func noSuchScript(c *command, script string) error {
	if _, err := os.Stat(script); err == nil || strings.HasSuffix(script, ".lua") || c.hasParent() {
		return nil
	}
	if sugg := c.root().suggestionsFor(script); len(sugg) > 0 {
		return &exitError{code: runtime.ExitNoInput, msg: fmt.Sprintf("cannot read script %s: no such file", script),
			hint: fmt.Sprintf("Did you mean the command 'ipcscript %s'?", sugg[0])}
	}
	return nil
}

// checkScript is `ipcscript check file.lua`.
func checkScript(s *settings, script string, stdout, stderr io.Writer) error {
	opts, err := s.options()
	if err != nil {
		return err
	}
	opts.Stdout, opts.Stderr = stderr, stderr
	rep, err := runtime.Check(script, opts)
	if err != nil {
		return &exitError{code: runtime.ExitSoftware, msg: err.Error()}
	}
	if s.asJSON {
		writeJSON(stdout, rep)
	} else if rep.OK {
		for _, o := range rep.Objects {
			fmt.Fprintf(stdout, "%-10s %-20q %-24s %s\n", o.Kind, o.Name, o.Line, o.Spec)
		}
		var names []string
		for _, p := range rep.Processes {
			names = append(names, p.Name)
		}
		fmt.Fprintf(stdout, "%d processes: %s\n", len(rep.Processes), strings.Join(names, " "))
	}
	if !rep.OK {
		fmt.Fprintf(stderr, "ipcscript: %s\n", failureLine(rep))
	}
	return exitCode(rep.ExitCode())
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// completeLua offers *.lua files and directories.
func completeLua(c *command, args []string, toComplete string) ([]string, compDirective) {
	return []string{"lua"}, compFilterFileExt
}

// completeScript (the root) offers the commands and *.lua files.
func completeScript(c *command, args []string, toComplete string) ([]string, compDirective) {
	if len(args) > 0 {
		return nil, compDefault
	}
	return []string{"lua"}, compFilterFileExt
}

// writeHelp is a command's --help: its description, then its usage.
func writeHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(c.long))
	writeUsage(w, c)
}

// writeUsage lists usage, examples, commands, flags (and for run, the exit
// codes).
func writeUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage:\n  %s\n", useLine(c))
	if !c.hasParent() {
		fmt.Fprintf(w, "  ipcscript <command> [flags] [args]\n")
	}
	if c.example != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", c.example)
	}
	if !c.hasParent() {
		fmt.Fprintf(w, "\nCommands:\n")
		for _, sub := range c.commands() {
			if sub.available() || sub.name() == "help" {
				fmt.Fprintf(w, "  %-11s %s\n", sub.name(), sub.short)
			}
		}
	}
	if c.hasAvailableFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", flagUsages(c.flags))
	}
	if c.name() == "run" || !c.hasParent() || c.name() == "test" || c.name() == "check" {
		fmt.Fprintf(w, "\n%s", exitCodes)
	}
	if !c.hasParent() {
		fmt.Fprintf(w, "\nUse \"ipcscript help <command>\" or \"ipcscript <command> --help\" for more about a command.\n")
	}
}

func useLine(c *command) string {
	if c.hasParent() {
		return c.parent.path() + " " + c.use
	}
	return c.use
}
