// Package cli is the ipcscript command line: flags in, runtime.Options out,
// an exit code back. It lives apart from main so tests can run it in-process.
//
// The commands are cobra commands (cobra gives per-command help, `help
// [cmd]`, shell completion and "did you mean" for commands from one
// definition, and man.go writes the man page from the same definitions).
// Each Main builds a fresh command tree, so tests can call it many times.
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

	"github.com/spf13/cobra"

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
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return runtime.ExitOK
	}
	usageHint := "Run 'ipcscript --help' for usage."
	if cmd != nil && cmd != root {
		usageHint = fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath())
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// cobra's own errors (an unknown command to help, a bad flag value
		// it parsed) are usage errors.
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
// `run` does: `ipcscript x.lua` is `ipcscript run x.lua`.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ipcscript [flags] file.lua [-- script args]",
		Short: "run Lua scripts whose processes are real OS processes",
		Long: `ipcscript runs a Lua script whose processes are real OS processes, connected
by pipes, mailboxes, message queues, semaphores, shared memory and sockets.
'ipcscript file.lua' is short for 'ipcscript run file.lua'.`,
		Example: `  ipcscript scripts/pipeline.lua
  ipcscript run --timeout 1m scripts/fanout.lua -- 8
  ipcscript --json scripts/pipeline.lua > report.json
  ipcscript check scripts/pipeline.lua
  ipcscript test -o junit exercises/ > results.xml
  ipcscript help test`,
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		// A script, or a command: complete both.
		ValidArgsFunction: completeScript,
	}
	root.SuggestionsMinimumDistance = 2
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("ipcscript {{.Version}}\n")
	root.CompletionOptions.HiddenDefaultCmd = false
	root.SetFlagErrorFunc(flagError)
	root.SetHelpFunc(func(c *cobra.Command, _ []string) { writeHelp(c.OutOrStdout(), c) })
	root.SetUsageFunc(func(c *cobra.Command) error { writeUsage(c.OutOrStderr(), c); return nil })

	var rs settings
	rs.addFlags(root.Flags(), "run")
	root.Flags().SetInterspersed(false) // what follows the script is the script's
	root.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usagef("no script given")
		}
		return runScript(c, &rs, args, stdout, stderr)
	}

	var run settings
	runCmd := &cobra.Command{
		Use:   "run [flags] file.lua [-- script args]",
		Short: "run a script (the default command)",
		Long: `Run a script: its declarations create the kernel objects, ipc.run() starts
its processes, and the run ends when every process has exited. Each
process's output lines are prefixed with [name]. On failure, a summary on
stderr says which process failed and why, with a Lua traceback (-v: all of it).`,
		Example: `  ipcscript run scripts/pipeline.lua
  ipcscript run --timeout 1m scripts/fanout.lua -- 8
  ipcscript run --json scripts/pipeline.lua > report.json`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeLua,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("run: no script given")
			}
			return runScript(c, &run, args, stdout, stderr)
		},
	}
	run.addFlags(runCmd.Flags(), "run")
	runCmd.Flags().SetInterspersed(false)

	var chk settings
	checkCmd := &cobra.Command{
		Use:   "check [flags] file.lua",
		Short: "list a script's processes and objects; launch nothing",
		Long: `Load a script and list its declarations (kind, name, line, parameters) and
its processes, without creating any object or starting any process.`,
		Example:           `  ipcscript check scripts/pipeline.lua`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeLua,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("check: want one script, got %d arguments", len(args))
			}
			return checkScript(&chk, args[0], stdout, stderr)
		},
	}
	chk.addFlags(checkCmd.Flags(), "check")

	var tst settings
	testCmd := &cobra.Command{
		Use:   "test [flags] [paths...]",
		Short: "run test scripts (*_test.lua); each passes or fails",
		Long: `Run every *_test.lua under the given paths (a file is taken as given, a
directory is searched; no path means the current directory). A test passes
when its run is ok: every process exited 0, no expectation failed, and no
deadlock or timeout happened that the script did not declare as expected
(ipc.run{expect = ...}). The text report ends with "N passed, N failed";
-o tap writes TAP 14, -o junit JUnit XML, -o json the event stream of
'go test -json' (gotestsum and CI dashboards read it). Exit 5 when no test
is found.`,
		Example: `  ipcscript test exercises/
  ipcscript test exercises/01_processes
  ipcscript test -o tap exercises/ > results.tap
  ipcscript test -o junit exercises/ > results.xml
  ipcscript test -o json exercises/ > events.json; gotestsum --raw-command -- cat events.json`,
		ValidArgsFunction: completeLua,
		RunE: func(c *cobra.Command, args []string) error {
			return runTests(c.Context(), &tst, args, stdout, stderr)
		},
	}
	tst.addFlags(testCmd.Flags(), "test")

	versionCmd := &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			fmt.Fprintln(stdout, "ipcscript", version)
			return nil
		},
	}
	manCmd := &cobra.Command{
		Use:   "man",
		Short: "write the man page (roff) to stdout",
		Long: `Write the ipcscript(1) man page, generated from the same definitions as
--help, to stdout: 'ipcscript man > ipcscript.1; man -l ipcscript.1'.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			writeMan(stdout, c.Root())
			return nil
		},
	}
	helpCmd := &cobra.Command{
		Use:   "help [command]",
		Short: "help about a command",
		Long:  `Help about a command: the same text as 'ipcscript <command> --help'.`,
		Args:  cobra.MaximumNArgs(1),
		ValidArgsFunction: func(c *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			var names []string
			for _, sub := range c.Root().Commands() {
				names = append(names, sub.Name())
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				writeHelp(stdout, c.Root())
				return nil
			}
			for _, sub := range c.Root().Commands() {
				if sub.Name() == args[0] {
					writeHelp(stdout, sub)
					return nil
				}
			}
			e := usagef("help: no command %q", args[0])
			if sugg := c.Root().SuggestionsFor(args[0]); len(sugg) > 0 {
				e.(*exitError).hint = fmt.Sprintf("Did you mean 'ipcscript help %s'?", sugg[0])
			}
			return e
		},
	}
	root.SetHelpCommand(helpCmd)
	root.AddCommand(runCmd, checkCmd, testCmd, newTraceCmd(stdout), versionCmd, manCmd)
	root.InitDefaultHelpFlag()
	for _, c := range root.Commands() {
		c.SetFlagErrorFunc(flagError)
		c.InitDefaultHelpFlag() // now, so `help CMD` lists it as `CMD --help` does
	}
	return root
}

// flagError makes a flag parse error a usage error with a hint.
func flagError(c *cobra.Command, err error) error {
	return &exitError{code: runtime.ExitUsage, msg: err.Error(),
		hint: fmt.Sprintf("Run '%s --help' for usage.", c.CommandPath())}
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
func runScript(c *cobra.Command, s *settings, args []string, stdout, stderr io.Writer) error {
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
	rep, err := runtime.RunFile(c.Context(), script, opts)
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
func noSuchScript(c *cobra.Command, script string) error {
	if _, err := os.Stat(script); err == nil || strings.HasSuffix(script, ".lua") || c.HasParent() {
		return nil
	}
	if sugg := c.Root().SuggestionsFor(script); len(sugg) > 0 {
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
func completeLua(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return []string{"lua"}, cobra.ShellCompDirectiveFilterFileExt
}

// completeScript (the root) offers the commands and *.lua files.
func completeScript(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveDefault
	}
	return []string{"lua"}, cobra.ShellCompDirectiveFilterFileExt
}

// writeHelp is a command's --help: its description, then its usage.
func writeHelp(w io.Writer, c *cobra.Command) {
	fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(c.Long))
	writeUsage(w, c)
}

// writeUsage lists usage, examples, commands, flags (and for run, the exit
// codes).
func writeUsage(w io.Writer, c *cobra.Command) {
	fmt.Fprintf(w, "Usage:\n  %s\n", useLine(c))
	if !c.HasParent() {
		fmt.Fprintf(w, "  ipcscript <command> [flags] [args]\n")
	}
	if c.Example != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", c.Example)
	}
	if !c.HasParent() {
		fmt.Fprintf(w, "\nCommands:\n")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				fmt.Fprintf(w, "  %-11s %s\n", sub.Name(), sub.Short)
			}
		}
	}
	if fs := c.LocalFlags(); fs.HasAvailableFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", flagUsages(fs))
	}
	if c.Name() == "run" || !c.HasParent() || c.Name() == "test" || c.Name() == "check" {
		fmt.Fprintf(w, "\n%s", exitCodes)
	}
	if !c.HasParent() {
		fmt.Fprintf(w, "\nUse \"ipcscript help <command>\" or \"ipcscript <command> --help\" for more about a command.\n")
	}
}

func useLine(c *cobra.Command) string {
	if c.HasParent() {
		return c.Parent().CommandPath() + " " + c.Use
	}
	return c.Use
}
