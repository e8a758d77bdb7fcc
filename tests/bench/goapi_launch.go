package main

// Launching processes, and idle ones for peak RSS.
//
//	launch N   the Go side of lua/launch.lua: start N processes and join
//	           them. Each is this binary re-executed with an inbox of its
//	           own (an ipc.Queue the case process creates, as the runtime
//	           creates one per process), which it maps and exits. The time
//	           covers creating the inboxes, starting and joining.
//	idle K MS  the Go side of lua/idle.lua: K such processes that map their
//	           inbox and sleep MS milliseconds; reports their pids.
//	reexec N [mingo]
//	           the bare re-exec floor under launch: N copies of the
//	           ipcscript binary itself started with IPCSCRIPT_BARE_EXIT=1
//	           (it exits at the top of main: Go runtime start-up, package
//	           initialisation, exit) and joined. The harness passes the
//	           binary it built (or --ipcscript) in IPCSCRIPT_BENCH_IPCSCRIPT.
//	           With mingo: the same with tests/bench/floor/mingo, an empty
//	           Go program (IPCSCRIPT_BENCH_MINGO), the floor under that.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/ipcscript/ipcscript/ipc"
)

const (
	envIpcscriptBin = "IPCSCRIPT_BENCH_IPCSCRIPT"
	envBareExit     = "IPCSCRIPT_BARE_EXIT"
	envMinGo        = "IPCSCRIPT_BENCH_MINGO"
)

// goNeedsIpcscript lists the Go cases that run the ipcscript binary.
var goNeedsIpcscript = map[string]bool{"reexec": true}

func init() {
	registerGoCase("launch", launchGo)
	registerGoCase("idle", idleGo)
	registerGoCase("reexec", reexecGo)
	registerGoRole("nothing", func(args []string) error { return inboxWorker(args, 0) })
	registerGoRole("idle", func(args []string) error {
		ms, err := positive(args, 1, "MS")
		if err != nil {
			return err
		}
		return inboxWorker(args, time.Duration(ms)*time.Millisecond)
	})
}

// inboxWorker maps the inbox it inherited (fd 0), sleeps for idle, and
// exits. args[0] is its name.
func inboxWorker(args []string, idle time.Duration) error {
	if len(args) < 1 {
		return errors.New("want NAME")
	}
	q, err := ipc.OpenQueue(inherited(0, "inbox"), ipc.QueueConfig{Name: fmt.Sprintf("inbox of %q", args[0])})
	if err != nil {
		return err
	}
	time.Sleep(idle)
	return q.Close()
}

// startInboxed creates an inbox for each of k workers and starts them in
// role, with extra args after the worker's name.
func startInboxed(c *crew, cl *closer, role string, k int, extra ...string) error {
	for i := range k {
		name := role + "." + strconv.Itoa(i+1)
		q, err := ipc.NewQueue(inboxConfig(name, k))
		if err != nil {
			return err
		}
		cl.add(func() { q.Close() })
		if err := c.start(role, append([]string{name}, extra...), q.File()); err != nil {
			return err
		}
	}
	return nil
}

func launchGo(args []string) (figures, error) {
	if len(args) != 1 {
		return nil, errors.New("usage: launch N")
	}
	n, err := positive(args, 0, "N")
	if err != nil {
		return nil, err
	}
	var cl closer
	defer cl.closeAll()
	var c crew
	t0 := time.Now()
	if err := startInboxed(&c, &cl, "nothing", n); err != nil {
		c.stop()
		return nil, err
	}
	if err := c.wait(); err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	return figures{"ns_per_op": secs * 1e9 / float64(n), "ops": n, "secs": secs, "ok": true}, nil
}

func idleGo(args []string) (figures, error) {
	if len(args) != 2 {
		return nil, errors.New("usage: idle K MS")
	}
	k, err := positive(args, 0, "K")
	if err != nil {
		return nil, err
	}
	if _, err := positive(args, 1, "MS"); err != nil {
		return nil, err
	}
	var cl closer
	defer cl.closeAll()
	var c crew
	if err := startInboxed(&c, &cl, "idle", k, args[1]); err != nil {
		c.stop()
		return nil, err
	}
	if err := c.wait(); err != nil {
		return nil, err
	}
	pids := make([]int, 0, k)
	for _, cmd := range c.cmds {
		pids = append(pids, cmd.Process.Pid)
	}
	return figures{"pids": pids, "ops": k, "ok": true}, nil
}

func reexecGo(args []string) (figures, error) {
	if len(args) != 1 && (len(args) != 2 || args[1] != "mingo") {
		return nil, errors.New("usage: reexec N [mingo]")
	}
	n, err := positive(args, 0, "N")
	if err != nil {
		return nil, err
	}
	binEnv := envIpcscriptBin
	if len(args) == 2 {
		binEnv = envMinGo
	}
	bin := os.Getenv(binEnv)
	if bin == "" {
		return figures{"ns_per_op": nil, "why": "no binary (" + binEnv + " unset)"}, nil
	}
	env := append(os.Environ(), envBareExit+"=1")
	t0 := time.Now()
	cmds := make([]*exec.Cmd, 0, n)
	for range n {
		c := exec.Command(bin)
		c.Env = env
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			for _, c := range cmds {
				c.Process.Kill()
				c.Wait()
			}
			return nil, err
		}
		cmds = append(cmds, c)
	}
	var first error
	for _, c := range cmds {
		if err := c.Wait(); err != nil && first == nil {
			first = fmt.Errorf("%s with %s=1: %v (does this binary exit at once in that mode?)", bin, envBareExit, err)
		}
	}
	if first != nil {
		return nil, first
	}
	secs := time.Since(t0).Seconds()
	return figures{"ns_per_op": secs * 1e9 / float64(n), "ops": n, "secs": secs, "ok": true}, nil
}
