package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/check"
	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
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
	err     error        // start failure
	out     *outputLimit // --sandbox: the output limit (sandbox.go)
	spawned bool         // made at run time by ipc.spawn
	// spawnClock is the spawner's clock (trace.Recorder.AppendClock) when
	// the run is traced: the cause of the instance's spawn event.
	spawnClock []byte
	// pidfd is the child's pidfd from its clone (SysProcAttr.PidFD), -1
	// where there is none; awaitExit owns it once the child started.
	pidfd int
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
	checked   *check.Trace // the checks' view of the recording, once made (nil: not made)
	checkedOf *trace.Trace // the recording checked was made from
	raceOnly  bool         // recorded only for the race detector (recordFor)
	wd        *watchdog    // bounds the whole run (runtime/watchdog.go)
	token     string       // marks the run's processes (IPCSCRIPT_RUN, reaper_linux.go)
	// The environment children inherit, read once per run (childEnviron).
	baseEnvOnce  sync.Once
	baseEnv      []string
	userMaxProcs bool   // GOMAXPROCS is set: children keep it
	runEnv       string // IPCSCRIPT_RUN=<token>, made once

	// Requests of the children at run time (ctl.go).
	requests chan request
	over     chan struct{} // closed when the event loop ends
	exitedCh chan exitEvent
	live     int             // children not yet reaped
	held     map[uint64]held // descriptors in messages, by token (ctl.go)
	// The declared processes and the implicit objects made before launch
	// (their inboxes): every child's manifest lists them; a spawned
	// process's manifest adds only itself and its inbox.
	declared, declaredImplicit int
	byProc                     map[*bindings.Process]*child // each launched process's child
	// What prepareStart writes each child's manifest with, kept from one
	// child to the next (launch.go): the manifest's lists and descriptor
	// lists, and the buffer it is encoded into. Only the run's goroutine
	// prepares children.
	manifest    bindings.Manifest
	manifestBuf []byte
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
	if sup.s.opts.Sandbox.Enabled {
		rep.NotEnforced = sandboxGaps()
		for _, g := range rep.NotEnforced {
			sup.warnf("--sandbox: not enforced: %s", g)
		}
	}
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
	exited := make(chan exitEvent, env.StatusSlots())
	sup.exitedCh = exited
	sup.requests = make(chan request, 16)
	sup.over = make(chan struct{})
	sup.held = map[uint64]held{}
	defer sup.releaseHeld(0, true)
	defer close(sup.over)
	sup.declared, sup.declaredImplicit = len(env.Procs), len(env.Implicit)
	sup.launchAll(env.Procs) // launch.go
	if env.Main != nil {     // ipc.run{main = fn}: a process of its own
		sup.launch(env.Main, false)
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
	for sup.live > 0 {
		select {
		case r := <-sup.requests:
			sup.serve(r)
		case ev := <-exited:
			sup.live--
			sup.exited(ev)
			if o.FailFast && !sup.childOK(ev.c) && !sup.stopping {
				sup.traceStop("fail-fast", "")
				sup.stop()
			}
		case <-sup.wd.expired:
			rep.TimedOut = true
			sup.warnf("timed out after %.3gs; stopping %d processes", time.Since(sup.s.start).Seconds(), sup.live)
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
				sup.warnf("timed out (the host's deadline); stopping %d processes", sup.live)
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
			env.ReleaseSlots() // ended spawned processes whose messages were received since
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

// launch starts process p (declared, or spawned at run time) and has it
// reaped; a start failure is reported and counts as its exit.
func (sup *supervisor) launch(p *bindings.Process, spawned bool) error {
	c := sup.newChild(p, spawned)
	if err := sup.start(c); err != nil {
		return sup.notStarted(c, err)
	}
	sup.wait(c)
	return nil
}

// newChild counts p's process among the run's children.
func (sup *supervisor) newChild(p *bindings.Process, spawned bool) *child {
	c := &child{p: p, ctlEnd: make(chan struct{}), spawned: spawned}
	sup.children = append(sup.children, c)
	if sup.byProc == nil {
		sup.byProc = map[*bindings.Process]*child{}
	}
	sup.byProc[p] = c
	sup.live++
	return c
}

// notStarted reports that c did not start; that counts as its exit.
func (sup *supervisor) notStarted(c *child, err error) error {
	c.err = err
	close(c.ctlEnd)
	sup.warnf("process %q did not start: %v", c.p.Name, err)
	go func() { sup.exitedCh <- exitEvent{c: c} }()
	return fmt.Errorf("process %q did not start: %v", c.p.Name, err)
}

// wait reads c's control socket until its end, then reaps c when it has
// exited and tells the event loop. One goroutine does both, in that order:
// the socket ends (EOF) only when the child's descriptors close, at its
// exit (it marked them close-on-exec at start, and nothing else holds
// them), so by then the exit is usually there to see without a wait
// (awaitExit), and the event loop finds the result already read. (A
// goroutine each was a second goroutine, a second wake-up and the
// pidfd's round through the netpoller per child.)
func (sup *supervisor) wait(c *child) {
	go func() {
		if c.ctl != nil {
			sup.readCtl(c)
		}
		awaitExit(c.pidfd)
		c.cmd.Wait() // the exit status is in ProcessState
		sup.exitedCh <- exitEvent{c: c, state: c.cmd.ProcessState}
	}()
}

// awaitExit returns once the child whose pidfd is fd has exited, without
// reaping it, and closes fd: it waits on the pidfd through the Go
// runtime's netpoller, so no thread is held meanwhile. cmd.Wait alone
// blocks a thread in waitid for the child's whole life (39 threads in the
// supervisor with 32 children alive), and with children starting and
// ending all the time the runtime kept handing the P from such threads
// to others. A child already exited is seen with one waitid, without the
// netpoller (after the end of its control socket, wait's usual case: 0-1
// of a 64-process launch's exits were left to wait for). With no pidfd
// (fd < 0), or one that cannot be polled, it returns at once and cmd.Wait
// blocks as before. polled says whether it waited in the netpoller.
func awaitExit(fd int) (polled bool) {
	if fd < 0 {
		return false
	}
	if exitedNow(fd) { // the usual case after the control socket's end (wait)
		unix.Close(fd)
		return false
	}
	// The clone's pidfd blocks: O_NONBLOCK (PIDFD_NONBLOCK) makes the
	// netpoller take it. The flag is the open file's, which os.Process's
	// own copy shares (a dup), and a non-blocking pidfd makes waitid say
	// EAGAIN rather than wait: unless the exit was seen, it is cleared
	// again for cmd.Wait.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
		unix.Close(fd)
		return false
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	seen := false
	defer func() { // before the Close
		if !seen {
			unix.FcntlInt(uintptr(fd), unix.F_SETFL, 0)
		}
	}()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo // zero: stays so while the child runs (WNOHANG)
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		seen = err == nil && info.Signo != 0
		return err != unix.EAGAIN && (err != nil || seen)
	})
	return true
}

// exitedNow reports whether the child whose (blocking) pidfd is fd has
// exited, without waiting and without reaping it.
func exitedNow(fd int) bool {
	var info unix.Siginfo // zero: stays so while the child runs (WNOHANG)
	err := unix.Waitid(unix.P_PIDFD, fd, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo != 0
}

// exited records a child's exit and releases what it held.
func (sup *supervisor) exited(ev exitEvent) {
	c := ev.c
	c.end = time.Now()
	c.state = ev.state
	if c.cmd != nil { // a run may start any number: keep what the report needs only
		c.cmd.Env, c.cmd.ExtraFiles, c.cmd.Args = nil, nil, nil
	}
	if c.cmd != nil && c.ctl != nil {
		<-c.ctlEnd // read to its end before the exit was reported (wait)
		c.ctl.Close()
	}
	if sup.status != nil {
		if c.p.Pid != 0 {
			sup.status.Slot(c.p.Slot).SetState(ipc.StateExited)
		}
		// For ipc.wait and ipc.monitor in the other processes.
		pr := sup.processReport(c)
		sig := 0
		if c.state != nil {
			if ws, ok := c.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				sig = int(ws.Signal())
			}
		}
		sup.status.SetEnded(c.p.Slot, pr.Exit, sig, pr.Error)
	}
	isMain := c.p == sup.s.env.Main
	// The declarations and the implicit objects, in the order of
	// env.Objects() but without making that list again on every exit (a
	// slice of every object: 2 KiB a child in a 256-process run).
	for _, ds := range [2][]*bindings.Decl{sup.s.env.Decls, sup.s.env.Implicit} {
		for _, d := range ds {
			if r, ok := d.Object.(bindings.Recoverer); ok && c.p.Pid != 0 {
				r.Recover(c.p.Pid)
			}
			// The main process sends as the supervisor ("main", who may
			// still send) and receives from the supervisor's inbox, which
			// stays open.
			if o, ok := d.Object.(bindings.ExitObserver); ok && !isMain {
				o.ProcessExited(c.p)
			}
		}
	}
	sup.traceExited(c)
	sup.releaseHeld(c.p.Slot, false) // what was passed to it and never taken
	if c.spawned {
		sup.releaseSpawned(c)
	}
	if !sup.childOK(c) && !sup.stopping {
		sup.errorf("process %q failed: %s", c.p.Name, describeExit(c))
		sup.writeTraceback(c.result.Traceback)
		if isMain { // the run's own body failed: nobody is left to lead the others
			sup.warnf("ipc.run{main}: stopping %d processes", sup.live)
			sup.traceStop("main failed", "")
			sup.stop()
		}
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
	if msg := sup.limitMessage(c); msg != "" {
		pr.OK, pr.Error = false, msg
	}
	return pr
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
	if op == "wait" { // a semaphore, cond or barrier: "a waits on barrier "gate"", not "waits to wait"
		part = fmt.Sprintf("%s waits on %s", c.p.Name, obj)
	}
	if loadU32(&s.Op) == ipc.OpProcWait { // ipc.wait: the peer is the process waited for
		for _, pc := range sup.children {
			if pc.p.Pid == int(loadI32(&s.Peer)) {
				return fmt.Sprintf("%s waits for %s to end (ipc.wait)", c.p.Name, pc.p.Name), pc.p.Name
			}
		}
		return c.p.Name + " waits for a process to end (ipc.wait)", ""
	}
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

// waitLine is "script:line: " for the line of the script where blocked
// process c waits (the innermost frame of the script at the call), or ""
// when the slot does not say.
func (sup *supervisor) waitLine(c *child) string {
	if line := loadI32(&sup.status.Slot(c.p.Slot).Line); line > 0 {
		return fmt.Sprintf("%s:%d: ", sup.s.name, line)
	}
	return ""
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
			part = sup.waitLine(c) + part
			if since := atomic.LoadInt64(&s.Since); since > 0 {
				part += fmt.Sprintf(" (for %.1fs)", time.Duration(ipc.MonoNow()-since).Seconds())
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
