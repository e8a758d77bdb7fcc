package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/check"
	"github.com/ipcscript/ipcscript/ipc"
)

type child struct {
	stopped bool // the runtime stopped it (timeout, deadlock, signal, fail-fast)
	p       *bindings.Process
	cmd     *exec.Cmd
	ctl     *os.File // parent's end of the control socket
	outs    []*os.File
	start   time.Time
	end     time.Time
	result  childResult
	ctlEnd  chan struct{}
	state   *os.ProcessState
	err     error // start failure
}

type supervisor struct {
	s         *session
	ctx       context.Context
	status    *ipc.StatusTable
	source    *os.File
	children  []*child
	devnull   *os.File
	outputs   sync.WaitGroup
	stopping  bool
	killTimer *time.Timer  // SIGKILL after the grace period, once stopping
	trace     *tracer      // nil unless the run is traced
	checked   *check.Trace // the checks' view of the recording (nil: not recorded)
	wd        *watchdog    // bounds the whole run (runtime/watchdog.go)
	token     string       // marks the run's processes (IPCSCRIPT_RUN, reaper_linux.go)
}

type exitEvent struct {
	c     *child
	state *os.ProcessState // nil when the child never started
}

// run launches every declared process, waits for all of them and returns
// the report. It is ipc.run() in the parent.
func (sup *supervisor) run(o bindings.RunOptions) *Report {
	env := sup.s.env
	rep := &Report{Script: sup.s.name, Expect: o.Expect}
	start := time.Now()
	sup.wd.enterRun()
	defer sup.wd.leaveRun()
	err := sup.prepare()
	if err == nil {
		err = env.PrepareLaunch()
	}
	if err == nil {
		sup.recordFor(o)
		err = sup.traceBegin()
	}
	if err != nil {
		rep.Error = err.Error()
		rep.settle()
		return rep
	}
	exited := make(chan exitEvent, len(env.Procs))
	for _, p := range env.Procs {
		c := &child{p: p, ctlEnd: make(chan struct{})}
		sup.children = append(sup.children, c)
		if err := sup.start(c); err != nil {
			c.err = err
			close(c.ctlEnd)
			sup.warnf("process %q did not start: %v", p.Name, err)
			exited <- exitEvent{c: c}
			continue
		}
		go func() {
			c.cmd.Wait() // the exit status is in ProcessState
			exited <- exitEvent{c: c, state: c.cmd.ProcessState}
		}()
	}
	if sup.status != nil {
		sup.status.MarkStarted() // bodies may run: every pid is known
	}
	// Only the children hold these now; EOF and hang-ups depend on it.
	for _, d := range env.Decls {
		if cl, ok := d.Object.(bindings.Closer); ok {
			cl.CloseParent()
		}
	}

	if o.Timeout > 0 {
		sup.wd.arm(time.Duration(o.Timeout * float64(time.Second)))
	}
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	watch := newDeadlockWatch(sup)
	live := len(sup.children)
	for live > 0 {
		select {
		case ev := <-exited:
			live--
			sup.exited(ev)
			if o.FailFast && !sup.childOK(ev.c) && !sup.stopping {
				sup.traceStop("fail-fast", "")
				sup.stop()
			}
		case <-sup.wd.expired:
			rep.TimedOut = true
			sup.warnf("timed out after %.3gs; stopping %d processes", time.Since(sup.s.start).Seconds(), live)
			rep.Where = sup.whereAll()
			for _, w := range rep.Where {
				sup.warnf("  %s", w)
			}
			sup.traceStop("timeout", "")
			sup.stop()
		case <-sup.ctx.Done():
			if timedOut(sup.ctx) {
				rep.TimedOut = true
				sup.traceStop("timeout", "")
			} else if isDeadline(sup.ctx) {
				rep.TimedOut = true
				sup.warnf("timed out (the host's deadline); stopping %d processes", live)
				rep.Where = sup.whereAll()
				for _, w := range rep.Where {
					sup.warnf("  %s", w)
				}
				sup.traceStop("timeout", "")
			} else {
				rep.Signal = signalName(sup.ctx)
				sup.traceStop(rep.Signal, "")
			}
			sup.stop()
			sup.ctx = context.Background()
		case <-ticker.C:
			sup.progress(start)
			if rep.Deadlock == "" && !sup.stopping {
				if d := watch.check(); d != "" {
					if f := sup.firstFailure(); f != nil {
						// Not a deadlock of the script's making: a process
						// failed and left the others waiting for it. The
						// failure is the outcome (exit 1), named first; the
						// summary says who was left waiting on what.
						rep.LeftWaiting = strings.TrimPrefix(d, "every process is blocked: ")
						sup.traceStop("left waiting", d)
					} else {
						rep.Deadlock = d // the summary names it
						sup.traceStop("deadlock", d)
					}
					sup.stop()
				}
			}
		}
	}
	if sup.s.status != nil {
		sup.s.status.clear()
	}
	if sup.killTimer != nil { // every child is reaped: nothing left to kill
		sup.killTimer.Stop()
	}
	sup.waitOutputs()
	for _, c := range sup.children {
		rep.Processes = append(rep.Processes, sup.processReport(c))
		for _, f := range c.result.Failed {
			rep.Failed = append(rep.Failed, c.p.Name+": "+f)
		}
	}
	rep.Elapsed = time.Since(start).Seconds()
	sup.traceEnd(rep)
	sup.checkRun(rep)
	rep.settle()
	return rep
}

// prepare creates what every child shares: the status table, the script
// source, /dev/null for stdin.
func (sup *supervisor) prepare() error {
	env := sup.s.env
	if len(env.Procs) == 0 {
		return nil
	}
	st, err := ipc.NewStatusTable(len(env.Procs))
	if err != nil {
		return err
	}
	sup.status = st
	env.Status = st
	fd, err := unix.MemfdCreate("ipcscript:source", unix.MFD_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("memfd_create", err)
	}
	sup.source = os.NewFile(uintptr(fd), "memfd:ipcscript:source")
	if _, err := sup.source.WriteString(sup.s.src); err != nil {
		return err
	}
	sup.devnull, err = os.Open(os.DevNull)
	inheritedCloseOnExec.Do(markInheritedCloseOnExec)
	return err
}

var inheritedCloseOnExec sync.Once

// markInheritedCloseOnExec marks close-on-exec every descriptor this
// process inherited without it (from a shell, a test runner), so that no
// child gets one: a child holds exactly what its manifest gives it.
// ExtraFiles and Files duplicate their descriptors for the child, so this
// never takes a descriptor from a child it is meant for.
func markInheritedCloseOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.CloseOnExec(fd)
		}
	}
}

// start launches one child.
func (sup *supervisor) start(c *child) error {
	p := c.p
	env := sup.s.env
	var cmd *exec.Cmd
	if p.Exec != nil {
		cmd = exec.Command(p.Exec[0], p.Exec[1:]...)
		cmd.Env = childEnviron("", sup.token)
	} else {
		exe := sup.s.opts.Executable
		if exe == "" {
			exe = "/proc/self/exe"
		}
		cmd = exec.Command(exe)
		cmd.Args = []string{os.Args[0] + " [" + p.Name + "]"}
		m := &bindings.Manifest{Script: sup.s.name, Args: sup.s.opts.Args, Self: p.Name, RunDir: env.RunDirPath()}
		if env.RunDirPath() != "" {
			id, _ := env.RunDir()
			m.RunID = id.ID()
		}
		for _, q := range env.Procs {
			m.Procs = append(m.Procs, bindings.ManifestProc{Name: q.Name, Group: q.Group, Index: q.Index, Count: q.Count})
		}
		ctlParent, ctlChild, err := socketPair()
		if err != nil {
			return err
		}
		c.ctl = ctlParent
		defer ctlChild.Close()
		files := []*os.File{ctlChild, sup.status.Region.File, sup.source}
		m.Ctl, m.Status, m.Source = 3, 4, 5
		// Each declaration with the descriptors of it this process holds.
		describe := func(d *bindings.Decl) bindings.ManifestDecl {
			md := bindings.ManifestDecl{Kind: d.Kind, Name: d.Name, Line: d.Line, Spec: d.Spec}
			for _, f := range d.Files {
				if !f.Owns(p) || f.File == nil {
					continue
				}
				if md.FDs == nil {
					md.FDs = map[string]int{}
				}
				md.FDs[f.Role] = 3 + len(files)
				files = append(files, f.File)
			}
			return md
		}
		for _, d := range env.Decls {
			m.Decls = append(m.Decls, describe(d))
		}
		for _, d := range env.Implicit {
			m.Implicit = append(m.Implicit, describe(d))
		}
		files = sup.traceFiles(c, m, files)
		cmd.Env = childEnviron(m.Encode(), sup.token)
		cmd.ExtraFiles = files
	}
	cmd.Stdin = sup.devnull
	if p.Stdin != nil {
		cmd.Stdin = p.Stdin.File("r")
	}
	var err error
	if cmd.Stdout, err = sup.output(c, p.Stdout, sup.s.stdout, "w"); err != nil {
		return err
	}
	if p.Stdout == nil && p.Stderr == nil && sup.s.stderr == sup.s.stdout {
		// One writer for both streams (a test's capture): one pipe, so the
		// child's stdout and stderr lines keep the order it wrote them in.
		cmd.Stderr = cmd.Stdout
	} else if cmd.Stderr, err = sup.output(c, p.Stderr, sup.s.stderr, "w"); err != nil {
		return err
	}
	// Each child leads a process group of its own: a terminal's Ctrl-C
	// reaches only the supervisor, and stopping a child also stops whatever
	// it started. (One group for all would need its leader alive: a short
	// first child would make every later setpgid fail with EPERM.)
	// A child of ours dies of SIGTERM when the supervisor dies, which it
	// handles by killing its descendants first (reaper_linux.go); a
	// program of the script's (exec) is killed outright.
	death := syscall.SIGKILL
	if p.Exec == nil {
		death = syscall.SIGTERM
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: death}
	c.cmd = cmd
	c.start = time.Now()
	sup.traceSpawning(c)
	err = cmd.Start()
	for _, f := range c.outs { // the child's ends; the parent keeps the read ends
		f.Close()
	}
	if err != nil {
		if c.ctl != nil {
			c.ctl.Close()
		}
		return err
	}
	if c.ctl != nil {
		go c.readResult()
	}
	p.Pid = cmd.Process.Pid
	sup.wd.addGroup(p.Pid)
	if sup.status != nil {
		atomic.StoreInt32(&sup.status.Slot(p.Slot).Pid, int32(p.Pid))
	}
	return nil
}

// readResult reads the child's one result message until EOF (the child's
// exit), then closes ctlEnd.
func (c *child) readResult() {
	defer close(c.ctlEnd)
	buf := make([]byte, 1<<16)
	for {
		n, err := c.ctl.Read(buf)
		if n > 0 {
			c.result = decodeResult(buf[:n])
		}
		if err != nil || n == 0 {
			return
		}
	}
}

// output returns the child's stdout/stderr: the wired pipe end, or a pipe
// whose lines the parent copies with the process's prefix.
func (sup *supervisor) output(c *child, wired *bindings.Decl, lw *lineWriter, role string) (*os.File, error) {
	if wired != nil {
		return wired.File(role), nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.outs = append(c.outs, w)
	prefix := "[" + c.p.Name + "] "
	if sup.s.opts.NoPrefix {
		prefix = ""
	}
	sup.outputs.Add(1)
	go func() {
		defer sup.outputs.Done()
		defer r.Close()
		copyLines(lw, prefix, r)
	}()
	return w, nil
}

// waitOutputs waits for the children's output to drain. A grandchild that
// kept a pipe open could hold it forever, so the wait is bounded.
func (sup *supervisor) waitOutputs() {
	done := make(chan struct{})
	go func() { sup.outputs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		sup.warnf("output of a background process is still open; not waiting for it")
	}
}

// exited records a child's exit and releases what it held.
func (sup *supervisor) exited(ev exitEvent) {
	c := ev.c
	c.end = time.Now()
	c.state = ev.state
	if c.cmd != nil && c.ctl != nil {
		select { // the result message arrives before EOF
		case <-c.ctlEnd:
		case <-time.After(time.Second):
		}
		c.ctl.Close()
	}
	if sup.status != nil && c.p.Pid != 0 {
		sup.status.Slot(c.p.Slot).SetState(ipc.StateExited)
	}
	for _, d := range sup.s.env.Objects() {
		if r, ok := d.Object.(bindings.Recoverer); ok && c.p.Pid != 0 {
			r.Recover(c.p.Pid)
		}
		if o, ok := d.Object.(bindings.ExitObserver); ok {
			o.ProcessExited(c.p)
		}
	}
	sup.traceExited(c)
	if !sup.childOK(c) && !sup.stopping {
		sup.errorf("process %q failed: %s", c.p.Name, describeExit(c))
		sup.writeTraceback(c.result.Traceback)
	}
}

// writeTraceback shows where a failing process was (see TracebackLines).
func (sup *supervisor) writeTraceback(tb string) {
	for _, line := range TracebackLines(tb, sup.s.opts.Verbose) {
		sup.s.stderr.writeLine("", []byte(line))
	}
}

func (sup *supervisor) childOK(c *child) bool {
	return c.err == nil && c.state != nil && c.state.Success() && c.result.Error == ""
}

func describeExit(c *child) string {
	switch {
	case c.err != nil:
		return c.err.Error()
	case c.result.Error != "":
		return c.result.Error
	case c.state == nil:
		return "unknown"
	}
	if ws, ok := c.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("exit status %d", c.state.ExitCode())
}

func (sup *supervisor) processReport(c *child) ProcessReport {
	pr := ProcessReport{Name: c.p.Name, Pid: c.p.Pid, Exit: -1, Error: c.result.Error, Traceback: c.result.Traceback, Stopped: c.stopped}
	if c.err != nil {
		pr.Error = c.err.Error()
	}
	if c.state != nil {
		pr.Exit = c.state.ExitCode()
		if ws, ok := c.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			pr.Signal = unix.SignalName(ws.Signal())
		}
		pr.Elapsed = c.end.Sub(c.start).Seconds()
	}
	pr.OK = sup.childOK(c)
	return pr
}

// stop ends the run: SIGTERM to every live child's process group, a grace
// period, SIGKILL.
func (sup *supervisor) stop() {
	if sup.stopping {
		return
	}
	sup.stopping = true
	var groups []int
	for _, c := range sup.children {
		if c.p.Pid != 0 && c.state == nil {
			groups = append(groups, c.p.Pid)
			c.stopped = true
			unix.Kill(-c.p.Pid, unix.SIGTERM)
		}
	}
	sup.killTimer = time.AfterFunc(sup.s.opts.grace(), func() {
		for _, g := range groups {
			unix.Kill(-g, unix.SIGKILL)
		}
		sup.traceKilled(groups)
	})
}

// cleanup kills anything left (after a panic or an early return) and closes
// what the parent held.
func (sup *supervisor) cleanup() {
	defer sweepRun(sup.token) // what SIGKILLed children left behind
	// Whatever a child started and left in its group goes with it.
	for _, c := range sup.children {
		if c.p.Pid != 0 {
			unix.Kill(-c.p.Pid, unix.SIGKILL)
		}
	}
	for _, d := range sup.s.env.Objects() {
		if r, ok := d.Object.(bindings.Releaser); ok {
			r.Release()
		}
	}
	if err := sup.s.env.RemoveRunDir(); err != nil {
		sup.errorf("removing the run directory: %v", err)
	}
	if sup.source != nil {
		sup.source.Close()
	}
	if sup.devnull != nil {
		sup.devnull.Close()
	}
	if sup.status != nil {
		sup.status.Region.Close()
	}
}

func (sup *supervisor) warnf(format string, args ...any) {
	if sup.s.opts.Quiet {
		return
	}
	sup.errorf(format, args...)
}

func (sup *supervisor) errorf(format string, args ...any) {
	sup.s.stderr.writeLine("", []byte("ipcscript: "+fmt.Sprintf(format, args...)))
}

// socketPair returns a close-on-exec SOCK_SEQPACKET pair: message
// boundaries are kept, and EOF tells either side the other is gone.
func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	return os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "ctl"), nil
}

// childEnviron is the environment without any inherited IPCSCRIPT_CHILD,
// plus ours when manifest is set: then also GOMAXPROCS=1 unless the user
// set GOMAXPROCS, which the child removes at once (restoreEnviron), and
// the run's mark (token, reaper_linux.go).
func childEnviron(manifest, token string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envChild+"=") && !strings.HasPrefix(kv, envUnset+"=") && !strings.HasPrefix(kv, envRun+"=") {
			env = append(env, kv)
		}
	}
	if token != "" {
		env = append(env, envRun+"="+token)
	}
	if manifest != "" {
		env = append(env, envChild+"="+manifest)
		if _, set := os.LookupEnv("GOMAXPROCS"); !set {
			env = append(env, "GOMAXPROCS=1", envUnset+"=GOMAXPROCS")
		}
	}
	return env
}

// deadlockWatch decides when every live process is blocked in an IPC
// operation that none of them can complete: all are blocked without a
// deadline and no operation has completed for a while.
type deadlockWatch struct {
	sup      *supervisor
	progress []uint64
	still    int
}

func newDeadlockWatch(sup *supervisor) *deadlockWatch {
	return &deadlockWatch{sup: sup}
}

const deadlockTicks = 4 // x 50 ms of standing still

func (w *deadlockWatch) check() string {
	sup := w.sup
	if sup.status == nil {
		return ""
	}
	var blocked []*child
	var progress []uint64
	for _, c := range sup.children {
		if c.state != nil || c.err != nil {
			continue // exited
		}
		if c.p.Exec != nil {
			w.still = 0
			return "" // an external program: we cannot see what it waits on
		}
		s := sup.status.Slot(c.p.Slot)
		if loadU32(&s.State) != ipc.StateBlocked || loadU32(&s.Deadline) != 0 || !sup.onlyRunCanEnd(loadI32(&s.Object)) {
			w.still = 0
			return ""
		}
		blocked = append(blocked, c)
		progress = append(progress, loadU64(&s.Progress))
	}
	if len(blocked) == 0 {
		return ""
	}
	if !equalU64(progress, w.progress) {
		w.progress = progress
		w.still = 0
		return ""
	}
	w.still++
	if w.still < deadlockTicks {
		return ""
	}
	return describeDeadlock(sup, blocked)
}

// onlyRunCanEnd reports whether a wait on the object with this id can only
// be ended by a process of this run. A listener, a FIFO, a public message
// queue or a connection can be ended from outside (a client, another
// program), so a run waiting on one is never called deadlocked.
func (sup *supervisor) onlyRunCanEnd(id int32) bool {
	env := sup.s.env
	if id < 0 {
		return int(-1-id) < len(env.Implicit) // an inbox
	}
	if int(id) >= len(env.Decls) {
		return false
	}
	d := env.Decls[id]
	switch d.Kind {
	case "pipe", "mailbox", "semaphore", "mutex", "cond", "barrier":
		return true
	case "mqueue":
		return !strings.Contains(d.Spec, "public=true")
	}
	return false
}

// describeDeadlock names what each blocked process waits on, in the
// script's names, cycle first when the waits name their peers.
func describeDeadlock(sup *supervisor, blocked []*child) string {
	waits := map[string]string{}
	var parts []string
	for _, c := range blocked {
		part, peer := sup.describeWait(c)
		if peer != "" {
			waits[c.p.Name] = peer
		}
		parts = append(parts, part)
	}
	if cyc := findCycle(waits); cyc != nil {
		return "cycle " + strings.Join(cyc, " -> ") + ": " + strings.Join(parts, "; ")
	}
	sort.Strings(parts)
	return "every process is blocked: " + strings.Join(parts, "; ")
}

// describeWait says what blocked process c waits for, in the script's
// names ("a waits to receive on mailbox "jobs" from b"), and the peer it
// waits for when the wait names one.
func (sup *supervisor) describeWait(c *child) (string, string) {
	decls := sup.s.env.Decls
	s := sup.status.Slot(c.p.Slot)
	op := ipc.OpNames[loadU32(&s.Op)]
	obj := "?"
	if i := int(loadI32(&s.Object)); i >= 0 && i < len(decls) {
		obj = decls[i].Describe()
	} else if j := -1 - i; j >= 0 && j < len(sup.s.env.Implicit) {
		obj = sup.s.env.Implicit[j].Describe() // an inbox
	}
	part := fmt.Sprintf("%s waits to %s on %s", c.p.Name, op, obj)
	if peer := int(loadI32(&s.Peer)); peer > 0 {
		for _, pc := range sup.children {
			if pc.p.Pid == peer {
				if op == "lock" {
					part += " held by " + pc.p.Name
				} else {
					part += " from " + pc.p.Name
				}
				return part, pc.p.Name
			}
		}
	}
	return part, ""
}

// whereAll says where each live process is (for a timeout): blocked in
// which operation on which object, at which line of the script, and for
// how long; sleeping; or running Lua code.
func (sup *supervisor) whereAll() []string {
	var where []string
	for _, c := range sup.children {
		if c.state != nil || c.err != nil || c.p.Pid == 0 {
			continue
		}
		if sup.status == nil || c.p.Exec != nil {
			where = append(where, fmt.Sprintf("%s is running (an external program)", c.p.Name))
			continue
		}
		s := sup.status.Slot(c.p.Slot)
		switch loadU32(&s.State) {
		case ipc.StateBlocked:
			part, _ := sup.describeWait(c)
			if line := loadI32(&s.Line); line > 0 {
				part = fmt.Sprintf("%s:%d: %s", sup.s.name, line, part)
			}
			if since := atomic.LoadInt64(&s.Since); since > 0 {
				part += fmt.Sprintf(" (for %.1fs)", time.Since(time.Unix(0, since)).Seconds())
			}
			where = append(where, part)
		case ipc.StateSleeping:
			where = append(where, c.p.Name+" is sleeping (ipc.sleep)")
		default:
			where = append(where, c.p.Name+" is running Lua code (not waiting in an IPC operation)")
		}
	}
	return where
}

// firstFailure is the first process that failed on its own (not stopped
// by the runtime), or nil.
func (sup *supervisor) firstFailure() *child {
	for _, c := range sup.children {
		if c.state != nil && !c.stopped && !sup.childOK(c) {
			return c
		}
	}
	return nil
}

// findCycle returns a cycle in the wait-for graph (a -> b: a waits for b).
func findCycle(waits map[string]string) []string {
	names := make([]string, 0, len(waits))
	for n := range waits {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, start := range names {
		seen := map[string]int{}
		var path []string
		for n := start; n != ""; n = waits[n] {
			if i, ok := seen[n]; ok {
				return append(path[i:], n)
			}
			seen[n] = len(path)
			path = append(path, n)
		}
	}
	return nil
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
