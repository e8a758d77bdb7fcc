package runtime

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// No process a run starts outlives it. Three layers:
//
//   - the supervisor is a child subreaper (PR_SET_CHILD_SUBREAPER): what a
//     child leaves behind, a setsid'd daemon included, is re-parented to
//     it rather than to init, and the end of the run kills what carries
//     the run's mark (IPCSCRIPT_RUN=<token> in its environment, which
//     every process of the run inherits);
//   - every child is a subreaper for its own descendants and kills them
//     all when it exits, on any path: normal end, error, the parent check,
//     SIGTERM/SIGHUP/SIGINT (stop), and parent death (Pdeathsig is SIGTERM
//     for our children, handled the same way);
//   - the command line, a process of its own, kills every descendant it
//     has before it exits (EndDescendants).
//
// So when the supervisor is SIGKILLed, each child gets SIGTERM from the
// kernel, kills its descendants and dies. What is not covered: a
// descendant of an `exec` program (not our code) when the supervisor is
// SIGKILLed, and a child that is itself stopped (SIGSTOP) at that moment.
const envRun = "IPCSCRIPT_RUN"

var subreaperOnce sync.Once

// becomeSubreaper makes this process the subreaper of its descendants.
func becomeSubreaper() {
	subreaperOnce.Do(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
}

// newRunToken is a random mark for one run's processes.
func newRunToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// procParents maps every pid to its parent pid; zombies maps those that
// are dead but not reaped yet (kept in the tree: a zombie's children are
// re-parented only once it is reaped, so it must not break the chain).
func procParents() (parents map[int]int, zombies map[int]bool) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, nil
	}
	parents, zombies = make(map[int]int, len(ents)), map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			parents[pid] = ppid
			if f[0] == "Z" || f[0] == "X" {
				zombies[pid] = true
			}
		}
	}
	return parents, zombies
}

// descendantsOf lists every descendant of the roots (roots included when
// alive), parents first.
func descendantsOf(roots []int, parents map[int]int) []int {
	kids := map[int][]int{}
	for pid, pp := range parents {
		kids[pp] = append(kids[pp], pid)
	}
	var out []int
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, k := range kids[p] {
			out = append(out, k)
			queue = append(queue, k)
		}
	}
	return out
}

// killTree SIGKILLs what targets returns, over and over until only
// zombies are left (a process may fork, or be re-parented to us, while we
// look), and reaps what are this process's children (we are their
// subreaper). One at a time: a child's signal handler and its parent
// check may both end it.
func killTree(targets func(parents map[int]int) []int) int {
	killMu.Lock()
	defer killMu.Unlock()
	self := os.Getpid()
	killed := 0
	for round := 0; round < 200; round++ {
		parents, zombies := procParents()
		pids := targets(parents)
		live := 0
		for _, pid := range pids {
			if pid == self {
				continue
			}
			if !zombies[pid] {
				live++
				if unix.Kill(pid, unix.SIGKILL) == nil {
					killed++
				}
			}
		}
		for _, pid := range pids {
			if parents[pid] == self && pid != self {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			}
		}
		if live == 0 && len(pids) == 0 {
			break
		}
		if live == 0 {
			time.Sleep(time.Millisecond) // zombies: let their parents reap them
		}
	}
	return killed
}

var killMu sync.Mutex

// allDescendants is every descendant of this process.
func allDescendants(parents map[int]int) []int {
	return descendantsOf([]int{os.Getpid()}, parents)
}

// EndDescendants kills every descendant of this process. The command line
// calls it before it exits: it is a process of its own and, being a
// subreaper, the parent of whatever the run's processes left behind.
func EndDescendants() int {
	if !hasChildren() {
		return 0
	}
	return killTree(allDescendants)
}

// sweepRun kills the processes re-parented to the supervisor that carry
// the run's mark (left by a child that was SIGKILLed), with their
// descendants, and reaps them.
func sweepRun(token string) int {
	if token == "" {
		return 0
	}
	self := os.Getpid()
	mark := []byte(envRun + "=" + token + "\x00")
	return killTree(func(parents map[int]int) []int {
		var roots []int
		for pid, pp := range parents {
			if pp != self {
				continue
			}
			env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
			if err == nil && bytes.Contains(append(env, 0), mark) {
				roots = append(roots, pid)
			}
		}
		if len(roots) == 0 {
			return nil
		}
		return append(roots, descendantsOf(roots, parents)...)
	})
}

// childReaper is what a child does so that nothing it starts outlives it:
// it becomes a subreaper and, on SIGTERM/SIGHUP/SIGINT (a stop, or the
// supervisor's death through Pdeathsig), kills its descendants and then
// dies of the signal as before.
func childReaper() {
	becomeSubreaper()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
	go func() {
		s := <-sigs
		// No fork may start from now on (os/exec holds ForkLock for
		// reading while it forks): the Lua goroutine keeps running until
		// the signal is raised again below, and a program it started
		// after the last look would escape.
		syscall.ForkLock.Lock()
		endChildDescendants()
		signal.Reset(s)
		unix.Kill(os.Getpid(), s.(syscall.Signal))
	}()
}

// endChildDescendants kills what this child started (every exit path).
func endChildDescendants() {
	if !hasChildren() {
		return // the common case, without reading all of /proc
	}
	killTree(allDescendants)
}

// hasChildren reports whether this process has a child (being a
// subreaper, it has descendants only then). Without
// /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN) it says yes.
func hasChildren() bool {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return true
	}
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil && !os.IsNotExist(err) || len(bytes.TrimSpace(b)) > 0 {
			return true
		}
		if os.IsNotExist(err) {
			if _, serr := os.Stat("/proc/self/task/" + t.Name()); serr == nil {
				return true // the file is missing, not the task
			}
		}
	}
	return false
}
