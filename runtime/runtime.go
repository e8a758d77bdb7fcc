package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/internal/luaload"
	"github.com/ipcscript/ipcscript/ipc"
)

// RunFile runs the script at path and reports what happened. The error is
// non-nil only when the run could not be attempted at all; a script that
// fails to load, or whose top level raises an error before ipc.run(), is
// reported with Report.LoadError (exit code 65).
func RunFile(ctx context.Context, path string, opts Options) (*Report, error) {
	if IsChild() {
		return nil, ErrInChild
	}
	src, bad := readScript(path)
	if bad != nil {
		return bad, nil
	}
	return RunString(ctx, path, string(src), opts)
}

// RunString runs a script given as source; name is used in messages (and
// children re-read it from there, so it must stay readable for the run, or
// be a name RunString was given the source for: children receive the source
// through a memfd when name is not a readable file).
func RunString(ctx context.Context, name, src string, opts Options) (*Report, error) {
	if IsChild() {
		// A host that forgot to call Child at the top of main would run the
		// whole script again in every child, each launching its own
		// children: a chain of re-executions. Refuse instead.
		return nil, ErrInChild
	}
	// What a killed run left behind (its run directory, its message queues)
	// is removed first; only objects provably of a dead run are touched.
	ipc.CleanStale()
	s := newSession(name, src, opts, bindings.ParentHost())
	defer s.close()
	return s.runParent(ctx)
}

// unreadable is the report for a script file that cannot be read (exit 66).
func unreadable(path string, err error) *Report {
	if pe, ok := err.(*os.PathError); ok {
		err = pe.Err // the path is in the message already
	}
	return &Report{Script: path, LoadError: true, NoInput: true, Error: fmt.Sprintf("cannot read script %s: %v", path, err)}
}

// ErrInChild is the error RunString and RunFile return in a process that a
// run launched as one of its processes.
var ErrInChild = errors.New("ipcscript: RunString/RunFile called in a child process of a run (" + envChild + " is set): " +
	"call runtime.Child(opts) at the very top of main, before anything else, so a child runs its part of the script and exits")

// Check loads the script and collects its declarations without creating
// objects or launching processes.
func Check(path string, opts Options) (*Report, error) {
	src, bad := readScript(path)
	if bad != nil {
		return bad, nil
	}
	s := newSession(path, string(src), opts, bindings.CheckHost())
	defer s.close()
	rep := &Report{Script: path}
	fn, err := luaload.Load(s.L, bytes.NewReader(src), path)
	if err != nil {
		rep.LoadError, rep.Error = true, loadMessage(err, string(src))
		return rep, nil
	}
	s.env.Run = func(L *lua.LState, _ bindings.RunOptions) lua.LValue {
		L.Error(lua.LString(stopCheck), 0)
		return lua.LNil
	}
	s.L.Push(fn)
	if err := s.L.PCall(0, 0, nil); err != nil && !isStopCheck(err) {
		rep.Error = luaMessage(s.L, err)
	}
	for _, d := range s.env.Decls {
		rep.Objects = append(rep.Objects, ObjectReport{Kind: d.Kind, Name: d.Name, Line: d.Line, Spec: d.Spec})
	}
	for _, p := range s.env.Procs {
		rep.Processes = append(rep.Processes, ProcessReport{Name: p.Name, OK: true})
	}
	rep.OK = rep.Error == ""
	return rep, nil
}

const stopCheck = "\x00ipcscript: check stops at ipc.run"

func isStopCheck(err error) bool {
	var ae *lua.ApiError
	return errors.As(err, &ae) && ae.Object.String() == stopCheck
}

// session is one Lua state and what goes with it.
type session struct {
	name, src string
	proto     *lua.FunctionProto // the script compiled (runParent), for the children (script.go)
	opts      Options
	L         *lua.LState
	env       *bindings.Env
	stdout    *lineWriter
	stderr    *lineWriter
	// The parent's own Lua output (print, io.write): partial lines wait
	// here until a newline or a flush.
	luaStdout, luaStderr *prefixWriter
	status               *statusLine // the progress line, or nil
	start                time.Time
	abandoned            bool // the watchdog gave up on the Lua goroutine
}

// flushLua writes out what the parent's print/io.write left without a
// newline (before the processes start, and at the end).
func (s *session) flushLua() {
	s.luaStdout.Flush()
	s.luaStderr.Flush()
}

func newSession(name, src string, opts Options, host bindings.Host) *session {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	s := &session{name: name, src: src, opts: opts, start: time.Now()}
	s.stdout = &lineWriter{w: opts.Stdout}
	s.stderr = &lineWriter{w: opts.Stderr}
	if opts.Progress {
		s.status = &statusLine{w: opts.Stderr, color: !opts.NoColor}
		s.stdout.status, s.stderr.status = s.status, s.status
	}
	if sameWriter(opts.Stdout, opts.Stderr) {
		// One writer for both (a test's capture): one lock, one order, and
		// each child gets one pipe for both streams (see supervisor.start).
		s.stderr = s.stdout
	}
	s.L = lua.NewState()
	openRandom(s.L)
	luaload.Open(s.L)
	if opts.Sandbox.Enabled {
		restrictLua(s.L, func() string { return s.env.RunDirPath() })
	}
	s.env = &bindings.Env{Host: host, Script: name, Args: opts.Args, MaxProcs: defaultMaxProcs(opts.MaxProcs)}
	s.env.Log = s.logWriter(bindings.ParentName)
	s.luaStdout = &prefixWriter{lw: s.stdout}
	s.luaStderr = &prefixWriter{lw: s.stderr}
	redirectLuaOutput(s.L, s.luaStdout, s.luaStderr)
	bindings.Preload(s.L, s.env)
	for n, m := range opts.Modules {
		s.L.PreloadModule(n, m)
	}
	setArgs(s.L, name, opts.Args)
	return s
}

func (s *session) logWriter(name string) *prefixWriter {
	prefix := "[" + name + "] "
	if s.opts.NoPrefix {
		prefix = ""
	}
	return &prefixWriter{lw: s.stderr, prefix: prefix}
}

func (s *session) close() {
	s.flushLua()
	if !s.abandoned { // an abandoned state is still in use by its goroutine
		s.L.Close()
	}
}

// setArgs sets Lua's `arg` table: arg[0] is the script, arg[1..] its args.
func setArgs(L *lua.LState, script string, args []string) {
	// Sized for the arguments, with no string-keyed part (arg has none;
	// arg[0] goes to the part for other keys whatever the sizes).
	t := L.CreateTable(len(args), 0)
	t.RawSetInt(0, lua.LString(script))
	for i, a := range args {
		t.RawSetInt(i+1, lua.LString(a))
	}
	L.SetGlobal("arg", t)
}

// runParent runs the script as the parent: declarations create objects and
// ipc.run launches the processes. The Lua part runs on its own goroutine so
// that the watchdog can end a run whose top-level code does not stop.
func (s *session) runParent(ctx context.Context) (*Report, error) {
	rep := &Report{Script: s.name}
	fn, err := luaload.Load(s.L, strings.NewReader(s.src), s.name)
	if err != nil {
		rep.LoadError, rep.Error = true, loadMessage(err, s.src)
		return rep, nil
	}
	s.proto = fn.Proto
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wd := newWatchdog(cancel, s.opts.grace())
	defer wd.stop()
	wd.arm(s.opts.Timeout)
	defer holdSubreaper()()
	sup := &supervisor{s: s, ctx: runCtx, wd: wd, token: newRunToken()}
	s.env.Secret = sup.token // every process has it (IPCSCRIPT_RUN): private tcp listeners ask for it
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.runLua(runCtx, sup, fn, rep)
	}()
	select {
	case <-done:
		return rep, nil
	case <-wd.hard:
	}
	// The Lua goroutine is stuck in a call that ignores the context: the
	// run is abandoned to it (the Lua state is never closed), and what
	// outlives a process is cleaned up here.
	s.abandoned = true
	wd.killGroups()
	sweepRun(sup.token)
	sup.abandon()
	return &Report{Script: s.name, TimedOut: true, Elapsed: time.Since(s.start).Seconds(),
		Error: "the script did not stop at the timeout (the supervising process is blocked in a call outside Lua); its processes were killed and the run abandoned"}, nil
}

// runLua runs the loaded script in the parent and fills rep.
func (s *session) runLua(ctx context.Context, sup *supervisor, fn *lua.LFunction, rep *Report) {
	stopProfile := startProfile(bindings.ParentName)
	defer stopProfile()
	defer sup.cleanup()
	s.env.Run = func(L *lua.LState, o bindings.RunOptions) lua.LValue {
		s.flushLua()
		r := sup.run(o)
		*rep = *r
		t := r.luaTable(L)
		t.RawSetString("trace", sup.luaTrace(L, r))
		return t
	}
	s.L.SetContext(ctx)
	s.L.Push(fn)
	err := s.L.PCall(0, 0, nil)
	if err == nil && !s.env.RanRun() && len(s.env.Procs) > 0 {
		// A script that declares processes and never calls ipc.run() runs as
		// if it ended with ipc.run().
		s.L.Push(s.L.GetField(s.L.GetField(s.L.Get(lua.RegistryIndex), "_LOADED"), "ipc"))
		if mod, ok := s.L.Get(-1).(*lua.LTable); ok {
			s.L.Pop(1)
			s.L.Push(mod.RawGetString("run"))
			err = s.L.PCall(0, 0, nil)
		} else {
			s.L.Pop(1)
		}
	}
	if err != nil {
		switch {
		case timedOut(ctx):
			rep.TimedOut = true // the top level was stopped where it was
		case ctx.Err() != nil:
			if rep.Signal == "" && !rep.TimedOut {
				if isDeadline(ctx) {
					rep.TimedOut = true
				} else {
					rep.Signal = signalName(ctx)
				}
			}
			// "context canceled" is the stop itself, said by the summary
			// ("interrupted; stopped 3 processes"), not an error of main.
			if msg := luaMessage(s.L, err); !strings.HasSuffix(msg, context.Canceled.Error()) && !strings.HasSuffix(msg, context.DeadlineExceeded.Error()) && !strings.HasSuffix(msg, "interrupted") {
				rep.Error = "main: " + msg
			}
		default:
			rep.Error = "main: " + luaMessage(s.L, err)
			rep.Traceback = luaTraceback(err)
			// Before ipc.run() nothing ran: the script itself is wrong
			// (exit 65, as a syntax error). After it, main failed (exit 1).
			// An internal error stays one (exit 70).
			rep.LoadError = !s.env.RanRun() && !isInternal(rep.Error)
		}
	}
	for _, f := range s.env.Failed {
		rep.Failed = append(rep.Failed, bindings.ParentName+": "+f)
	}
	rep.Script = s.name
	rep.Elapsed = time.Since(s.start).Seconds()
	rep.settle()
}

// loadMessage turns an error of the Lua compiler into the "file:line:"
// form editors and terminals link to: gopher-lua says `x.lua line:4(column:3)
// near 'end': syntax error` and `x.lua at EOF: syntax error`. src, when
// known, gives the line of the end of the file. (No regexp: children call
// this too, and a regexp compiled at start is paid by every process.)
func loadMessage(err error, src ...string) string {
	msg := err.Error()
	if i := strings.Index(msg, "\nstack traceback"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimSpace(msg)
	if name, rest, ok := strings.Cut(msg, " line:"); ok {
		line, rest, ok1 := strings.Cut(rest, "(column:")
		col, rest, ok2 := strings.Cut(rest, ") near '")
		i := strings.LastIndex(rest, "':")
		if ok1 && ok2 && i >= 0 && isDigits(line) && isDigits(col) {
			return fmt.Sprintf("%s:%s:%s: %s near '%s'", name, line, col, strings.TrimSpace(rest[i+2:]), rest[:i])
		}
	}
	if name, what, ok := strings.Cut(msg, " at EOF:"); ok {
		where := name
		if len(src) > 0 {
			where = fmt.Sprintf("%s:%d", name, strings.Count(strings.TrimRight(src[0], "\n"), "\n")+1)
		}
		return fmt.Sprintf("%s: %s at the end of the file (an unclosed function, block, bracket or string?)", where, strings.TrimSpace(what))
	}
	return msg
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// luaMessage extracts the error value of a Lua error without the
// traceback. An error object with a __tostring metamethod is shown through
// it (as Lua's own interpreter does), not as "table: 0x...". A Go panic
// inside a Lua call is an internal error (internalPrefix, exit 70).
func luaMessage(L *lua.LState, err error) string {
	var ae *lua.ApiError
	if errors.As(err, &ae) {
		if ae.Type == lua.ApiErrorPanic {
			return internalPrefix + loadMessage(err)
		}
		if ae.Object != nil && ae.Object != lua.LNil {
			return errorText(L, ae.Object)
		}
	}
	return loadMessage(err)
}

// luaTraceback is the stack traceback of a Lua error ("stack traceback:"
// and one frame a line), or "".
func luaTraceback(err error) string {
	var ae *lua.ApiError
	if errors.As(err, &ae) && ae.Type != lua.ApiErrorPanic {
		return strings.TrimSpace(ae.StackTrace)
	}
	return ""
}

// TracebackLines are the lines that show a failure's Lua traceback under
// its message, indented: the frames in Lua code (not the runtime's Go
// functions, "[G]: ..."), at most 5, or with verbose the whole traceback.
func TracebackLines(tb string, verbose bool) []string {
	if tb == "" {
		return nil
	}
	var lines []string
	if verbose {
		for _, line := range strings.Split(tb, "\n") {
			lines = append(lines, "    "+strings.TrimSpace(line))
		}
		return lines
	}
	for _, line := range strings.Split(tb, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line == "stack traceback:" || strings.HasPrefix(line, "[G]:") {
			continue
		}
		if len(lines) == 5 {
			lines = append(lines, "        ...")
			break
		}
		lines = append(lines, "        "+line)
	}
	if len(lines) == 0 {
		return nil
	}
	return append([]string{"    stack traceback (-v for all of it):"}, lines...)
}

// signalName reads the cause a CLI puts on its context when a signal came.
func signalName(ctx context.Context) string {
	var sc SignalCause
	if errors.As(context.Cause(ctx), &sc) {
		return sc.Name
	}
	return "interrupt"
}

// isDeadline reports whether ctx ended because its deadline passed (an
// embedder's context.WithTimeout): a timeout, exit 124, not an interrupt.
func isDeadline(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), context.DeadlineExceeded)
}

// SignalCause is the context cause a host sets when a signal stops the run
// (context.WithCancelCause): the report then says "interrupted" and the
// exit code is 130 (interrupt) or 143 (terminated).
type SignalCause struct{ Name string }

func (c SignalCause) Error() string { return "stopped by signal: " + c.Name }
