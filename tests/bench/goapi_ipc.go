package main

// What the Go API cases share: a crew of workers (this binary re-executed,
// see startWorker), the descriptors they inherit, the report a measuring
// worker sends back, and argument parsing.
//
// Every case is laid out as the runtime lays out a run: the case process
// (the harness's child) plays the supervisor and creates every object, the
// workers are started with the objects' descriptors in exec.Cmd.ExtraFiles
// and open them there (ipc.Open...), and the process that measures is the
// one that does so in the Lua script (ping, the reader, the coordinator).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"

	"github.com/ipcscript/ipcscript/ipc"
)

// bodySize is the message body of the round-trip and throughput cases.
const bodySize = 64

// inherited returns the i-th descriptor a worker inherited (ExtraFiles[i],
// fd 3+i).
func inherited(i int, name string) *os.File {
	return os.NewFile(uintptr(3+i), name)
}

// crew is the workers of one case.
type crew struct {
	cmds  []*exec.Cmd
	abort func() // called once, when a worker fails: releases the case process's own waits
	once  sync.Once
	done  chan struct{} // closed when every worker has been reaped
	err   error         // the first failure, once done is closed
}

// start starts a worker in role with args and the given descriptors.
func (c *crew) start(role string, args []string, files ...*os.File) error {
	cmd, err := startWorker(role, args, files...)
	if err != nil {
		return fmt.Errorf("starting worker %s: %v", role, err)
	}
	c.cmds = append(c.cmds, cmd)
	return nil
}

// watch waits for every worker in the background. When one fails the
// others are killed (they may be waiting for it) and abort runs. wait
// returns the first failure, as often as it is called.
func (c *crew) watch() {
	c.done = make(chan struct{})
	errs := make(chan error, len(c.cmds))
	for _, cmd := range c.cmds {
		go func() {
			err := cmd.Wait()
			if err != nil {
				err = fmt.Errorf("worker %s (pid %d): %v", roleOf(cmd), cmd.Process.Pid, err)
			}
			errs <- err
		}()
	}
	go func() {
		var first error
		for range c.cmds {
			if err := <-errs; err != nil && first == nil {
				first = err
				c.fail()
			}
		}
		c.err = first
		close(c.done)
	}()
}

func (c *crew) fail() {
	c.once.Do(func() {
		for _, cmd := range c.cmds {
			_ = cmd.Process.Kill()
		}
		if c.abort != nil {
			c.abort()
		}
	})
}

// wait waits for every worker (watch must have been called) and returns
// the first failure.
func (c *crew) wait() error {
	if c.done == nil {
		c.watch()
	}
	<-c.done
	return c.err
}

// stop kills and reaps every worker: the way out when the case process
// itself fails.
func (c *crew) stop() {
	c.fail()
	_ = c.wait()
}

func roleOf(cmd *exec.Cmd) string {
	for _, e := range cmd.Env {
		if len(e) > len(envGoRole) && e[:len(envGoRole)+1] == envGoRole+"=" {
			return e[len(envGoRole)+1:]
		}
	}
	return "?"
}

// A report is how a measuring worker hands its figures to the case
// process: one JSON object on a pipe.
type report struct{ r, w *os.File }

func newReport() (*report, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	return &report{r, w}, nil
}

// started closes the case process's write end once the workers hold theirs.
func (rp *report) started() { rp.w.Close() }

// read returns the figures sent, once every worker has exited.
func (rp *report) read() (figures, error) {
	defer rp.r.Close()
	b, err := io.ReadAll(rp.r)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("the measuring worker sent no figures")
	}
	var f figures
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("the measuring worker's figures: %v", err)
	}
	return f, nil
}

// sendReport is the measuring worker's side of a report.
func sendReport(f *os.File, fig figures) error {
	b, err := json.Marshal(fig)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Close()
}

// closer collects what the case process must release when the case ends.
type closer []func()

func (c *closer) add(f func()) { *c = append(*c, f) }
func (c *closer) closeAll() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
}

// positive parses args[i] as a positive number.
func positive(args []string, i int, what string) (int, error) {
	if i >= len(args) {
		return 0, fmt.Errorf("missing %s", what)
	}
	n, err := strconv.Atoi(args[i])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s must be a positive number, not %q", what, args[i])
	}
	return n, nil
}

// inboxConfig is the configuration of a direct-link inbox as the runtime
// creates it: unbounded, capacity counted per sender (every link
// unbounded, as in scripts that declare no ipc.link).
func inboxConfig(owner string, senders int) ipc.QueueConfig {
	caps := make([]int, senders)
	for i := range caps {
		caps[i] = ipc.Unbounded
	}
	return ipc.QueueConfig{Name: fmt.Sprintf("inbox of %q", owner), Capacity: ipc.Unbounded, PerSender: true, SenderCapacity: caps}
}

// forever is the WaitOpts of a blocking call with no timeout.
var forever = ipc.WaitOpts{}
