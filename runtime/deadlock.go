package runtime

import (
	"sort"
	"strings"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/ipc"
)

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
		if loadU32(&s.State) != ipc.StateBlocked || loadU32(&s.Deadline) != 0 || (loadU32(&s.Op) != ipc.OpProcWait && !sup.onlyRunCanEnd(loadI32(&s.Object))) || sup.released(c, s) {
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
	// Standing still is not proof: a process woken from its wait says
	// "blocked" in its slot until it runs, and on a saturated machine (or in
	// a throttled cgroup) it can wait for a CPU longer than the ticks. The
	// kernel knows: a woken thread is runnable. Only when no thread of any
	// blocked process is runnable is the run deadlocked.
	for _, c := range blocked {
		if runnable(c.p.Pid) {
			w.still = 0
			return ""
		}
	}
	return describeDeadlock(sup, blocked)
}

// released reports whether c, whose slot says it waits, has in fact been
// released and not yet run: a FIFO object handed it what it waited for, or
// the process it waits for (ipc.wait) has ended. On a busy machine a woken
// process can wait a long time for a CPU; that is not a deadlock.
func (sup *supervisor) released(c *child, s *ipc.WaitStatus) bool {
	if loadU32(&s.Op) == ipc.OpProcWait {
		peer := int(loadI32(&s.Peer))
		for _, pc := range sup.children {
			if pc.p.Pid == peer && pc.p.Pid != 0 {
				ended, _, _, _ := sup.status.Ended(pc.p.Slot)
				return ended
			}
		}
		return false
	}
	id := loadI32(&s.Object)
	if env := sup.s.env; id >= 0 && int(id) < len(env.Decls) {
		if g, ok := env.Decls[id].Object.(bindings.Granter); ok {
			return g.Granted(c.p.Pid)
		}
	}
	return false
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
// script's names and at which line of the script (as a timeout's report
// does), cycle first when the waits name their peers.
func describeDeadlock(sup *supervisor, blocked []*child) string {
	waits := map[string]string{}
	var parts []string
	for _, c := range blocked {
		part, peer := sup.describeWait(c)
		if peer != "" {
			waits[c.p.Name] = peer
		}
		parts = append(parts, sup.waitLine(c)+part)
	}
	if cyc := findCycle(waits); cyc != nil {
		return "cycle " + strings.Join(cyc, " -> ") + ": " + strings.Join(parts, "; ")
	}
	sort.Strings(parts)
	return "every process is blocked: " + strings.Join(parts, "; ")
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
