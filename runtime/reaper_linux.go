package runtime

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/ipc"
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

// becomeSubreaper makes this process the subreaper of its descendants
// for the rest of its life (a child; the command line).
func becomeSubreaper() {
	subreaperOnce.Do(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
}

// OwnDescendants makes this process the subreaper of everything it
// starts, for the rest of its life, so that EndDescendants finds what a
// run left behind. A program that is ipcscript calls it first (the
// command line does); an embedding host need not: a run makes its host a
// subreaper only while it runs (holdSubreaper).
func OwnDescendants() { becomeSubreaper() }

// subreaperHold counts the runs in progress in this process.
var subreaperHold struct {
	sync.Mutex
	n   int
	was bool // the process was a subreaper before the first run
}

// holdSubreaper makes this process a subreaper while a run is in
// progress: what a run's child leaves behind is re-parented to the
// supervisor, which sweeps it. release gives the process its previous
// state back after the last run: a host that stayed a subreaper would
// inherit every orphan of its subtree for the rest of its life and, not
// waiting for them, keep them as zombies (the test binary collected
// `[exe] <defunct>` from the supervisors other tests SIGKILLed).
func holdSubreaper() (release func()) {
	h := &subreaperHold
	h.Lock()
	defer h.Unlock()
	if h.n == 0 {
		var was int32
		unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&was)), 0, 0, 0)
		h.was = was != 0
		if !h.was {
			unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
		}
	}
	h.n++
	return func() {
		h.Lock()
		defer h.Unlock()
		if h.n--; h.n == 0 && !h.was {
			unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
		}
	}
}

// newRunToken is a random mark for one run's processes.
func newRunToken() string {
	var b [12]byte
	if err := ipc.RandomBytes(b[:]); err != nil {
		panic(err) // getrandom fails only on a kernel without it (< 3.17)
	}
	return hex.EncodeToString(b[:])
}

// procParents maps every pid to its parent pid; zombies maps those that
// are dead but not reaped yet (kept in the tree: a zombie's children are
// re-parented only once it is reaped, so it must not break the chain).
func procParents() (parents map[int]int, zombies map[int]bool) {
	procScans.Add(1)
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

// killTree SIGKILLs what targets returns, over and over until a scan
// finds nothing (a process may fork, or be re-parented to us, while we
// look), and reaps what are this process's children (we are their
// subreaper). A scan is not a snapshot (see endAll), so this is for a
// process that goes on living (the supervisor's sweep of the run's
// marked processes; the command line's endAll follows it); one that
// ends uses endAll.
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

var killMu, endMu sync.Mutex

// hasChildren is children, for sweepRun (a test's stand-in).
var hasChildren = children

// procScans counts the scans of /proc (procParents), for the tests.
var procScans atomic.Int64

// allDescendants is every descendant of this process.
func allDescendants(parents map[int]int) []int {
	return descendantsOf([]int{os.Getpid()}, parents)
}

// EndDescendants kills every descendant of this process. The command line
// calls it before it exits: it is a process of its own and, being a
// subreaper, the parent of whatever the run's processes left behind.
func EndDescendants() int {
	return endAll()
}

// endAll kills every descendant of this process, a subreaper that is
// about to exit, and reaps them all. A scan of /proc finds what to kill,
// but it is not one snapshot: a process that forks and exits while the
// scan reads /proc can leave a child it never listed (a setsid'd daemon
// escaped that way: the last scan had found nothing). So only the kernel's
// list of this process's children says when it is done: a subreaper with
// no child, not even a zombie, has no descendant, since every live
// descendant's line up to it is either alive or was re-parented to it.
// It reaps any child (wait4(-1)): the caller is ending and waits for none
// of them itself.
func endAll() int {
	endMu.Lock() // a child's signal handler and its parent check may both get here
	defer endMu.Unlock()
	killed := 0
	for round := 0; round < 2000; round++ {
		has, known := children()
		if !known {
			return killed + killTree(allDescendants) // no children list: the scans alone
		}
		if !has {
			return killed
		}
		parents, zombies := procParents()
		live := 0
		for _, pid := range allDescendants(parents) {
			if !zombies[pid] {
				live++
				if unix.Kill(pid, unix.SIGKILL) == nil {
					killed++
				}
			}
		}
		for {
			var ws unix.WaitStatus
			if pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
		if live == 0 {
			time.Sleep(time.Millisecond) // dying: let them exit (and their parents reap them)
		}
	}
	return killed
}

// sweepRun kills the processes re-parented to the supervisor that carry
// the run's mark (left by a child that was SIGKILLed), with their
// descendants, and reaps them.
func sweepRun(token string) int {
	if token == "" {
		return 0
	}
	// What it kills are this process's children (re-parented to it, a
	// subreaper) and their descendants: with no child at all, not even a
	// zombie, there is nothing to find. That is the usual end of a run
	// (every child reaped), and the scan of /proc it skips read the stat
	// file of every process on the machine: ~3 ms of the supervisor's
	// CPU per run on a machine with a few hundred processes.
	if has, known := hasChildren(); known && !has {
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
// it becomes a subreaper, and before it first starts a program
// (childSignals) it handles SIGTERM/SIGHUP/SIGINT (a stop, or the
// supervisor's death through Pdeathsig) by killing its descendants and
// then dying of the signal as before. Until then it has no descendant
// (orphans come to a subreaper only from its own descendants), so the
// signal's default action, death by it, is what the handler would do;
// and os/signal costs every child three more threads (its signal thread,
// the template thread its LockOSThread starts, and the one that takes the
// P while the signal thread sleeps): on a 64-process launch, 2.39 -> 2.00
// ms of CPU and 82 -> 39 context switches per process without it.
func childReaper() {
	becomeSubreaper()
}

var childSignalsOnce sync.Once

// childSignals installs the child's handler of SIGTERM/SIGHUP/SIGINT
// (childReaper), once. A child calls it before anything that starts a
// program: os.execute and io.popen (guardForks), and at start when the
// host registered Go modules, which may start programs at any time.
func childSignals() {
	childSignalsOnce.Do(func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
		go func() {
			s := <-sigs
			endChildDescendants()
			signal.Reset(s)
			unix.Kill(os.Getpid(), s.(syscall.Signal))
		}()
	})
}

// stopForking is taken once, by the first exit path of a child.
var stopForking sync.Once

// endChildDescendants kills what this child started (every exit path:
// the end of the body, the signal handler, the parent check). From its
// first call no fork may start, on any goroutine (os/exec forks holding
// ForkLock for writing, so holding it excludes them): the signal handler
// and the parent check run beside the Lua goroutine, which keeps running
// until the process exits, and a program it started after the last look
// would escape (the parent check took no lock: 10 of 891 setsid'd daemons
// escaped 100 SIGKILLed supervisors). The lock is never released; the
// process is ending.
func endChildDescendants() {
	stopForking.Do(syscall.ForkLock.Lock)
	endAll()
}

// children reports whether this process has a child, a zombie included
// (being a subreaper, it has descendants only then): waitid(P_ALL,
// WNOHANG|WNOWAIT|__WALL) fails with ECHILD only when no thread of the
// process has a child of any kind, and reaps nothing. known is false when
// it fails otherwise.
// (It read /proc/self/task/*/children before: every child paid ~2 ms of
// CPU for it, most of it in the supervisor's waitid, where the kernel
// invalidates the /proc dentries those reads had made: measured on a
// 64-process launch, 5.5 -> 2.5 ms per process.)
func children() (has, known bool) {
	var info unix.Siginfo
	switch err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT|unix.WALL, nil); err {
	case nil:
		return true, true
	case unix.ECHILD:
		return false, true
	default:
		return true, false
	}
}
