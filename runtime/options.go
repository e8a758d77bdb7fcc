// Package runtime runs ipcscript scripts: it is the embedding API and the
// supervisor. It runs a script once in the parent to collect declarations,
// creates the kernel objects, re-executes the binary once per declared
// process, supervises the children and returns a Report.
package runtime

import (
	"io"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Options configure a run. The zero value runs with the process's stdout
// and stderr, no timeout, and launches children from /proc/self/exe.
type Options struct {
	Args     []string      // the script's arguments (Lua `arg[1..n]`)
	Stdout   io.Writer     // the script's output (print, io.write), the parent's included; default os.Stdout
	Stderr   io.Writer     // diagnostics and children's stderr; default os.Stderr
	Timeout  time.Duration // stop the run after this long (exit 124); 0 = none
	Grace    time.Duration // between SIGTERM and SIGKILL when stopping; default 1s
	FailFast bool          // stop every process as soon as one fails
	NoPrefix bool          // do not prefix children's lines with "[name] "
	Quiet    bool          // no runtime messages on stderr except errors
	MaxProcs int           // most processes a run may declare; 0 = bindings.DefaultMaxProcs
	Sandbox  Sandbox       // --sandbox: Lua, Landlock, seccomp and limits (sandbox.go)
	Verbose  bool          // a failing process's full Lua traceback, not only the script's frames

	// Progress draws a status line on Stderr (processes running, blocked,
	// exited; operations done) while a run lasts longer than a second. Set
	// it only when Stderr is a terminal: the line is redrawn with \r and
	// erased before every other line. NoColor: no ANSI attributes in it.
	Progress      bool
	ProgressWidth int // the terminal's columns (the line is cut to fit); 0 = 80
	NoColor       bool

	// Executable launches the children. Default: /proc/self/exe, which
	// works for any binary that calls Child at the top of main.
	Executable string

	// Race runs the shared-memory race detector over the run (it records
	// the run, as Trace does): a race fails the run with ExitRace.
	Race bool

	// Trace records every IPC operation of the run (docs/TRACING.md).
	Trace TraceOptions

	// Modules are extra Lua modules, available to scripts through
	// require(name) in the parent and in every child.
	Modules map[string]lua.LGFunction
}

func (o *Options) grace() time.Duration {
	if o.Grace > 0 {
		return o.Grace
	}
	return time.Second
}

// Exit codes, as documented in the README (and DESIGN.md).
const (
	ExitOK          = 0
	ExitFailed      = 1   // a process failed or an expectation failed
	ExitUsage       = 2   // bad command line
	ExitDeadlock    = 3   // the run deadlocked
	ExitRace        = 4   // a shared-memory race (--race)
	ExitNoTests     = 5   // `test` found no tests
	ExitLoad        = 65  // the script does not load (syntax error, error before ipc.run)
	ExitNoInput     = 66  // the script file cannot be read
	ExitSoftware    = 70  // an internal error of ipcscript itself
	ExitTimeout     = 124 // --timeout, ipc.run{timeout=} or the host's deadline expired
	ExitHangup      = 129 // SIGHUP
	ExitInterrupted = 130 // SIGINT
	ExitQuit        = 131 // SIGQUIT
	ExitTerminated  = 143 // SIGTERM
)
