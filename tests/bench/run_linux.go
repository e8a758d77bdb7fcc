package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A run is one execution of one implementation of one case: a program that
// measures itself and prints one JSON line as its last JSON output.
type run struct {
	argv []string
	env  []string // added to the harness's environment
	dir  string
	cpus []int // affinity of the run and all its descendants; nil: any CPU
	// sampleRSS: sample the peak RSS of every process of the run.
	sampleRSS bool
	needPids  bool // the memory row reads the peak of the workers named in "pids"
	timeout   time.Duration
}

// figures is the JSON line a run printed, with the harness's own figures
// (peak RSS) added.
type figures map[string]any

// start runs r and returns its figures. It never leaves a process behind:
// the run has its own process group, which is killed when the run ends or
// times out, and descendants that escaped it are found and killed by sweep.
func (r run) start(ctx context.Context) (figures, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()

	c := exec.Command(r.argv[0], r.argv[1:]...)
	c.Dir = r.dir
	c.Env = append(os.Environ(), r.env...)
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 4 << 10}
	c.Stdout, c.Stderr = &stdout, stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A descendant outside the group may hold stdout open after the run
	// has exited: stop waiting for it (sweep finds it).
	c.WaitDelay = time.Second

	t0 := time.Now()
	if err := startPinned(c, r.cpus); err != nil {
		return nil, err
	}
	pid := c.Process.Pid
	var sampler *rssSampler
	samplerDone := make(chan struct{})
	if r.sampleRSS {
		sampler = newRSSSampler(pid)
		go func() {
			defer close(samplerDone)
			sampler.loop(ctx)
		}()
	} else {
		close(samplerDone)
	}

	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-ctx.Done():
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-waited
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s", r.timeout)
		} else {
			err = ctx.Err()
		}
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // the run exited; what held its stdout, sweep reports
	}
	exited := time.Since(t0)
	cancel()
	<-samplerDone
	// Whatever outlives the run by more than a grace period is a leak of
	// the program under test.
	leaked := sweep(pid, time.Second)
	wall := time.Since(t0)

	if err != nil {
		return nil, fmt.Errorf("%s: %v%s", strings.Join(r.argv, " "), err, stderr.excerpt())
	}
	fig, perr := lastJSON(stdout.Bytes())
	if perr != nil {
		return nil, fmt.Errorf("%s: %v%s", strings.Join(r.argv, " "), perr, stderr.excerpt())
	}
	if ok, present := fig["ok"].(bool); present && !ok {
		return nil, fmt.Errorf("%s: the program's own check failed: %s", strings.Join(r.argv, " "), strings.TrimSpace(stdout.String()))
	}
	if leaked > 0 {
		return nil, fmt.Errorf("%s: left %d process(es) behind (killed)", strings.Join(r.argv, " "), leaked)
	}
	// The run's wall time, from its start to the harness's last check of
	// it, and of that the part after the run ended: what the harness spends
	// beyond the program's own "secs" (--json, -v).
	fig["wall_secs"] = wall.Seconds()
	fig["after_exit_secs"] = (wall - exited).Seconds()
	if sampler != nil {
		if err := sampler.addTo(fig, r.needPids); err != nil {
			return nil, fmt.Errorf("%s: %v", strings.Join(r.argv, " "), err)
		}
	}
	return fig, nil
}

// startPinned starts c with the given CPU affinity, which every descendant
// inherits. The affinity is set on a locked OS thread around the fork, so
// the harness itself stays unpinned.
func startPinned(c *exec.Cmd, cpus []int) error {
	if len(cpus) == 0 {
		return c.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return os.NewSyscallError("sched_getaffinity", err)
	}
	for _, cpu := range cpus {
		set.Set(cpu)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return os.NewSyscallError("sched_setaffinity", err)
	}
	err := c.Start()
	if rerr := unix.SchedSetaffinity(0, &old); rerr != nil && err == nil {
		err = os.NewSyscallError("sched_setaffinity", rerr)
	}
	return err
}

// becomeSubreaper makes orphaned descendants of the harness its children, so
// a process that escaped a run's process group can still be found, killed
// and reaped.
func becomeSubreaper() error {
	return os.NewSyscallError("prctl", unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
}

// sweep waits up to grace for what is left of a run to exit: members of its
// process group pgid, and orphaned descendants (which a subreaper inherits;
// between runs the harness has no other children). It reaps them as they
// exit, kills what is still alive at the deadline, and returns how many
// processes it had to kill. pgid 0 sweeps orphans only.
func sweep(pgid int, grace time.Duration) int {
	if nothingLeft(pgid) {
		return 0
	}
	deadline := time.Now().Add(grace)
	for {
		for {
			var st unix.WaitStatus
			if pid, err := unix.Wait4(-1, &st, unix.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
		group := processes(func(p procStat) bool { return pgid > 0 && p.pgid == pgid })
		kids := processes(func(p procStat) bool { return p.ppid == os.Getpid() })
		if len(group) == 0 && len(kids) == 0 {
			return 0
		}
		if time.Now().After(deadline) {
			if pgid > 1 {
				_ = unix.Kill(-pgid, unix.SIGKILL)
			}
			for _, k := range kids {
				_ = unix.Kill(k, unix.SIGKILL)
			}
			for _, k := range kids {
				var st unix.WaitStatus
				_, _ = unix.Wait4(k, &st, 0, nil)
			}
			return len(union(group, kids))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nothingLeft says, without reading /proc, that a run left nothing: no
// process is in the group pgid (kill(-pgid, 0) fails with ESRCH) and the
// harness has no child at all, not even a zombie (waitid fails with
// ECHILD). Two system calls instead of two scans of every /proc/PID/stat
// after each of the ~600 runs of a full table; when either finds something,
// sweep scans as before.
func nothingLeft(pgid int) bool {
	if pgid > 0 && unix.Kill(-pgid, 0) != unix.ESRCH {
		return false
	}
	var info unix.Siginfo
	return unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT|unix.WALL, nil) == unix.ECHILD
}

// lastJSON returns the last line of out that is a JSON object. A line
// prefixed by the runtime with "[name] " is accepted too.
func lastJSON(out []byte) (figures, error) {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if strings.HasPrefix(line, "[") {
			if j := strings.Index(line, "] {"); j > 0 {
				line = line[j+2:]
			}
		}
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var f figures
		if json.Unmarshal([]byte(line), &f) == nil {
			return f, nil
		}
	}
	out = bytes.TrimSpace(out)
	if len(out) > 300 {
		out = append([]byte("…"), out[len(out)-300:]...)
	}
	return nil, fmt.Errorf("no JSON line on stdout (stdout: %q)", out)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) excerpt() string {
	s := strings.TrimSpace(string(t.buf))
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	// A Go panic says what happened on its first line, not its last.
	for i, l := range lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			lines = lines[i:min(len(lines), i+8)]
			break
		}
	}
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return "\n    " + strings.Join(lines, "\n    ")
}
