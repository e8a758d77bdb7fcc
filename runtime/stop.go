package runtime

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/bindings"
)

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
