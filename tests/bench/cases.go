package main

import (
	"fmt"
	"strconv"
)

// impl is one column of the table: an implementation of every case.
type impl int

const (
	implLua impl = iota // ipcscript, scripts in lua/ run by the ipcscript binary
	implGo              // ipcscript's ipc package from Go (goapi.go)
	implPy              // Python multiprocessing, peers/py/
	implC               // C over the same kernel mechanism, peers/c/
	numImpls
)

var implKeys = [numImpls]string{"lua", "go", "py", "c"}
var implTitles = [numImpls]string{"Lua", "Go API", "Python", "C"}

// The order in which one repeat runs the implementations of a case.
var runOrder = [numImpls]impl{implC, implPy, implLua, implGo}

// command is how one implementation runs one case: a program and its
// arguments. For C it names a binary built from peers/c/, for Python a
// script in peers/py/, for Lua a script in lua/, and for Go a case
// registered in goapi.go. Two cells with the same command share one
// measurement.
type command struct {
	prog  string
	args  []string
	flags []string // Lua: ipcscript flags before the script (e.g. --race)
}

// metric says which JSON field of a run's line a row shows, and how.
type metric struct {
	field  string  // the JSON field
	scale  float64 // shown value = field value * scale
	unit   string  // as shown
	higher bool    // higher is better
}

var (
	perRoundTrip = metric{"ns_per_op", 1e-3, "µs/rt ↓", false}
	msgsPerSec   = metric{"msgs_per_s", 1e-3, "k msg/s ↑", true}
	mbPerSec     = metric{"mb_per_s", 1, "MB/s ↑", true}
	opsPerSec    = metric{"ops_per_s", 1e-6, "M op/s ↑", true}
	perProcess   = metric{"ns_per_op", 1e-6, "ms/proc ↓", false}
	perHop       = metric{"ns_per_op", 1e-3, "µs/hop ↓", false}
	perCall      = metric{"ns_per_op", 1, "ns/call ↓", false}
	seconds      = metric{"secs", 1, "s ↓", false}
	// Filled in by the harness from its samples of /proc/PID/status.
	workerRSS = metric{"rss_worker_kib", 1.0 / 1024, "MiB ↓", false}
	totalRSS  = metric{"rss_total_kib", 1.0 / 1024, "MiB ↓", false}
	maxRSS    = metric{"rss_max_kib", 1.0 / 1024, "MiB ↓", false}
)

// groups are the six kinds of case, as the table heads them.
var groups = map[int]string{
	1: "1 round trip of a 64-byte message",
	2: "2 one-way throughput of 64-byte messages",
	3: "3 bulk bytes in 64 KiB writes",
	4: "4 shared-memory operations",
	5: "5 launch: start N trivial processes, then join them all, per process",
	6: "6 memory: peak RSS (VmHWM)",
	7: "7 many processes blocked at once",
	8: "8 floors of this machine (the same run)",
	9: "9 tracing (--trace): what recording costs, writing and opening a trace",
}

// benchCase is one row of the table.
type benchCase struct {
	id     string
	group  int
	title  string
	metric metric
	// cpus, when set, pins every process of every run of the row to these
	// CPUs (the affinity is inherited by all descendants).
	cpus []int
	// memory rows are sampled for peak RSS while they run. A peak RSS
	// hardly varies, so they take at most 3 repeats.
	memory bool
	// interleave, when set, names the rows that take turns with this one
	// repeat by repeat (as the cells of a row do), run where the first of
	// them is listed: the rows a target divides one by the other.
	interleave string
	// maxRepeats, when set, caps the repeats of a row whose every run is
	// long by nature (a headless browser's start): memory rows take 3.
	maxRepeats int
	// minSecs, when set, makes one run of each cell that a target reads
	// (targetCells) run its command again and again, in turns with the
	// other cells of its interleaved rows, until their measured "secs" add
	// up to this in at least minRounds runs (runner.go, measure): the
	// run's figure is over every operation of all of them. For rows whose
	// command is one short event (a launch of 64 processes: 25-130 ms;
	// 200,000 messages: 40-160 ms), which a stall of a few ms or a
	// placement of the processes on this kind of VM moved by a third.
	minSecs float64
	cmds    [numImpls]*command // nil: no such mechanism, shown as —
}

// sizes are the counts of one mode (full or --quick).
type sizes struct {
	rtt1, rtt2     int // round trips on one CPU, on two
	rttPy1, rttPy2 int // the same for Python's Pipe and Queue (link and mailbox rows: 2-5x C's time)
	msgs           int // messages per throughput run
	msgsPy         int // the same for Python (~1/10 the rate of the others)
	fanIn, fanInC  int // messages per 16→1 run; C's (~1/3 the rate of ipcscript's)
	bulk           int // bytes per bulk run
	addC, addPy    int // atomic adds (C is ~50x faster than the rest)
	addLua         int
	mutexC         int // lock/unlock pairs
	mutexPy        int
	mutexPy2       int // Python's, 2 processes (~1/5 its uncontended rate)
	mutexLua       int
	procs          int // processes launched per launch run, and in the big memory run
	procsSpawn     int // the same for Python's spawn (~25x the cost of the others)
	idleMS         int // how long an idle process sleeps in the memory rows
	ringProcs      int // processes in the token ring
	ringLaps       int
	sustained      int // bytes through a capacity-64 mailbox for the RSS probe
	sustainedAt    int // in messages of this many bytes
	reads          int // 64 KiB shm reads
	getsets        int // shm get+set pairs, plain and under --race
	syscalls       int
	traceEvents    int     // events of the trace-writing and trace-opening rows
	shortSecs      float64 // measured seconds a run of a short row gathers (benchCase.minSecs): launch, throughput
}

// The full counts give each run of a cell at least ~0.2 s of measured work
// on the machine of 2026-12-02 14:09 (bhyve; a system call 1.1 µs), and not
// much more: where one implementation is several times slower than the
// others at a rate, it runs fewer operations (see README.md, "Counts").
var fullSizes = sizes{
	rtt1: 10000, rtt2: 5000,
	rttPy1: 5000, rttPy2: 2500,
	msgs: 200000, msgsPy: 10000,
	fanIn: 200000, fanInC: 40000, // fanIn = msgs: the fan-in target divides one by the other
	bulk: 256 << 20, // 512 MiB: C's pipe ~0.55 s a run, and 1-2 s when the host's memory was busy (2026-12-03 09:52)
	addC: 20000000, addPy: 500000, addLua: 1000000,
	mutexC: 10000000, mutexPy: 2000000, mutexPy2: 500000, mutexLua: 1000000,
	procs: 64, procsSpawn: 16,
	idleMS:    250,
	ringProcs: 256, ringLaps: 30,
	sustained: 1 << 30, sustainedAt: 16 << 10,
	reads:       20000,
	getsets:     200000,
	syscalls:    200000,
	traceEvents: 1000000,
	shortSecs:   0.3,
}

var quickSizes = sizes{
	rtt1: 200, rtt2: 200,
	rttPy1: 200, rttPy2: 200,
	msgs: 2000, msgsPy: 2000,
	fanIn: 2000, fanInC: 2000,
	bulk: 4 << 20,
	addC: 100000, addPy: 10000, addLua: 10000,
	mutexC: 100000, mutexPy: 10000, mutexPy2: 10000, mutexLua: 10000,
	procs: 8, procsSpawn: 8,
	idleMS:    200,
	ringProcs: 8, ringLaps: 5,
	sustained: 4 << 20, sustainedAt: 16 << 10,
	reads:       200,
	getsets:     5000,
	syscalls:    10000,
	traceEvents: 10000,
}

const chunk = 64 << 10 // bulk write size

func cmd(prog string, args ...any) *command {
	c := &command{prog: prog}
	for _, a := range args {
		c.args = append(c.args, fmt.Sprint(a))
	}
	return c
}

// both is the same command for the Lua script and the Go API case: they
// share one argument contract (see goapi.go).
func both(c *command, py, cc *command) [numImpls]*command {
	return [numImpls]*command{implLua: c, implGo: c, implPy: py, implC: cc}
}

// interleaved names the rows that take turns with one another, repeat by
// repeat (benchCase.interleave): the rows a target divides one by the
// other, which run minutes apart otherwise (the empty Go program's exec
// was the last row of the table, its ratio to the bare re-exec taken
// across every row between them).
var interleaved = map[string]string{
	"tput-cap64": "cap64", "tput-16x1": "cap64", "trace-tput-cap64": "cap64",
	"rtt-mailbox-1cpu": "mailbox-1cpu", "trace-rtt-mailbox-1cpu": "mailbox-1cpu",
	"shm-getset": "getset", "shm-getset-race": "getset",
	"launch-spawn": "launch", "launch-fork": "launch", "launch-reexec": "launch", "floor-spawn": "launch", "floor-mingo": "launch",
}

func allCases(s sizes) []benchCase {
	var cs []benchCase

	// 1. Round trips. Where the processes run decides the figure on this
	// kind of machine (a wake-up across CPUs costs several times one on the
	// same CPU, and the scheduler places a pair differently from run to
	// run), so each mechanism is measured twice: every process pinned to
	// one CPU, and free on all CPUs.
	// Python's Pipe and Queue round trips take 2-6x C's time (39 and 70
	// µs on 1 CPU at 14:09): they run fewer (rttPy1, rttPy2).
	type rtt struct {
		id, title, mode, py, c string
		pySlow                 bool
	}
	rtts := []rtt{
		{"link", "direct link (C: pipe)", "link", "link", "pipe", true},
		{"mailbox", "mailbox (C: shm+sem)", "mailbox", "queue", "sem", true},
		{"pipe", "pipe", "pipe", "pipe", "pipe", false},
		{"unix", "unix socket", "unix", "unix", "unix", false},
		{"mq", "POSIX message queue", "mq", "mq", "mq", false},
		{"sem", "semaphore + shm", "sem", "sem", "sem", false},
	}
	for _, place := range []struct {
		suffix, title string
		cpus          []int
		n, nPy        int
	}{
		{"1cpu", "1 CPU", []int{0}, s.rtt1, s.rttPy1},
		{"2cpu", "2 CPUs", nil, s.rtt2, s.rttPy2},
	} {
		for _, r := range rtts {
			nPy := place.n
			if r.pySlow {
				nPy = place.nPy
			}
			var minSecs float64
			if r.id == "link" && place.cpus == nil {
				// The 2-CPU target: 5,000 round trips are 10-60 ms of Lua's,
				// and one run sticks to a fast or a slow placement. (On 1
				// CPU the spread was small: 1.38-1.99 worst in six tables.)
				minSecs = s.shortSecs
			}
			cs = append(cs, benchCase{
				id: "rtt-" + r.id + "-" + place.suffix, group: 1,
				title: r.title + ", " + place.title, minSecs: minSecs,
				metric: perRoundTrip, cpus: place.cpus, interleave: interleaved["rtt-"+r.id+"-"+place.suffix],
				cmds: both(cmd("pingpong", r.mode, place.n), cmd("pingpong.py", r.py, nPy), cmd("pingpong", r.c, place.n)),
			})
		}
	}

	// 2. One-way throughput through one mailbox; C: a shared-memory ring
	// with semaphores ("unbounded" = room for every message).
	for _, t := range []struct {
		id, title  string
		procs      int
		capacity   string
		cCapacity  int
		pyCapacity string
	}{
		{"tput-cap64", "mailbox, capacity 64, 1→1", 1, "64", 64, "64"},
		{"tput-unbounded", "mailbox, unbounded, 1→1", 1, "unbounded", s.msgs, "unbounded"},
		{"tput-4x4", "mailbox, capacity 64, 4→4", 4, "64", 64, "64"},
	} {
		minSecs := s.shortSecs // 200,000 messages: 0.04-0.16 s a run
		if t.procs > 1 {
			minSecs = 0 // 4→4 is no target's
		}
		cs = append(cs, benchCase{
			id: t.id, group: 2, title: t.title, metric: msgsPerSec, interleave: interleaved[t.id], minSecs: minSecs,
			cmds: both(cmd("tput", t.procs, t.procs, t.capacity, s.msgs),
				cmd("tput.py", t.procs, t.procs, t.pyCapacity, s.msgsPy),
				cmd("ring", t.procs, t.procs, t.cCapacity, s.msgs)),
		})
	}
	// Fan-in: 16 producers on one consumer (Python's peer takes equal
	// counts only). Fewer messages than 1→1 (a rate: 100,000 last ~0.3 s
	// at 14:09's 353k msg/s), and fewer for C, whose ring takes a mutex
	// per put (97k msg/s: 200,000 took 2 s a run).
	cs = append(cs, benchCase{
		id: "tput-16x1", interleave: interleaved["tput-16x1"], group: 2, title: "mailbox, capacity 64, 16→1", metric: msgsPerSec, minSecs: s.shortSecs,
		cmds: [numImpls]*command{
			implLua: cmd("tput", 16, 1, "64", s.fanIn),
			implGo:  cmd("tput", 16, 1, "64", s.fanIn),
			implC:   cmd("ring", 16, 1, 64, s.fanInC),
		},
	})

	// 3. Bulk bytes in 64 KiB writes.
	for _, m := range []struct {
		mode, title string
		minSecs     float64
	}{
		// The unix socket's cells were 0.1-0.5 s a run, C's the most spread
		// (1,534-4,654 MB/s in one table); the pipe's C cell is ~0.55 s.
		{"pipe", "pipe", 0}, {"unix", "unix socket", s.shortSecs}, {"shm", "shared memory, 16-slot ring", 0},
	} {
		cs = append(cs, benchCase{
			id: "bulk-" + m.mode, group: 3, title: m.title, metric: mbPerSec, minSecs: m.minSecs,
			cmds: both(cmd("bulk", m.mode, s.bulk, chunk), cmd("bulk.py", m.mode, s.bulk, chunk), cmd("bulk", m.mode, s.bulk, chunk)),
		})
	}

	// mem:read of 64 KiB against memcpy from a shared mapping: of a block
	// that stays the same, and of one changed before every read. 20,000
	// reads are ~0.03 s: the target's cells gather runs (minSecs).
	cs = append(cs, benchCase{
		id: "shm-read", group: 3, title: "mem:read of 64 KiB (C: memcpy)", metric: mbPerSec, minSecs: s.shortSecs,
		cmds: [numImpls]*command{
			implLua: cmd("shmread", chunk, s.reads),
			implC:   cmd("floor", "memcpy", chunk, s.reads),
		},
	}, benchCase{
		id: "shm-read-changing", group: 3, title: "mem:read of 64 KiB changed each time (C: memcpy)", metric: mbPerSec, minSecs: s.shortSecs,
		cmds: [numImpls]*command{
			implLua: cmd("shmread", chunk, s.reads, "changing"),
			implC:   cmd("floor", "memcpy", chunk, s.reads),
		},
	})

	// 4. Shared-memory operations. Rates, so the counts differ per
	// implementation to keep every run long enough and short enough.
	for _, o := range []struct {
		id, title, mode, pyMode string
		workers                 int
		lua, py, c              int
	}{
		{"shm-add", "atomic add, 1 process", "add", "add", 1, s.addLua, s.addPy, s.addC},
		{"mutex-1", "mutex lock+unlock, uncontended", "mutex", "lock", 1, s.mutexLua, s.mutexPy, s.mutexC},
		{"mutex-2", "mutex lock+unlock, 2 processes", "mutex", "lock", 2, s.mutexLua, s.mutexPy2, s.mutexC},
	} {
		cs = append(cs, benchCase{
			id: o.id, group: 4, title: o.title, metric: opsPerSec,
			cmds: both(cmd("shmops", o.mode, o.workers, o.lua), cmd("shmops.py", o.pyMode, o.workers, o.py), cmd("shmops", o.mode, o.workers, o.c)),
		})
	}

	// What --race costs on a shm-heavy loop (issue 11: at most 10x): the
	// same get+set loop without and with the race detector, timed around
	// the whole run (see lua/shmrace.lua).
	race := cmd("shmrace", s.getsets)
	race.flags = []string{"--race"}
	cs = append(cs,
		benchCase{
			id: "shm-getset", interleave: interleaved["shm-getset"], group: 4, title: "get+set pair, 1 process, whole run", metric: opsPerSec,
			cmds: [numImpls]*command{implLua: cmd("shmrace", s.getsets)},
		},
		benchCase{
			id: "shm-getset-race", interleave: interleaved["shm-getset-race"], group: 4, title: "get+set pair, 1 process, whole run, --race", metric: opsPerSec,
			cmds: [numImpls]*command{implLua: race},
		},
	)

	// 5. Launch and join. The ipcscript cells of the first two rows are one
	// measurement, shown against both kinds of peer. Python's spawn starts
	// fewer processes: each costs ~25x one of the others (it was 2/3 of
	// the row's time), and the figure is per process.
	n := s.procs
	spawnTitle := fmt.Sprintf("%d, against spawn", n)
	if s.procsSpawn != n {
		spawnTitle = fmt.Sprintf("%d (Python: %d), against spawn", n, s.procsSpawn)
	}
	cs = append(cs,
		benchCase{
			id: "launch-spawn", interleave: interleaved["launch-spawn"], group: 5, title: spawnTitle, metric: perProcess, minSecs: s.shortSecs,
			cmds: both(cmd("launch", n), cmd("launch.py", "spawn", s.procsSpawn), cmd("launch", "spawn", n)),
		},
		benchCase{
			id: "launch-fork", interleave: interleaved["launch-fork"], group: 5, title: fmt.Sprintf("%d, against fork", n), metric: perProcess,
			cmds: both(cmd("launch", n), cmd("launch.py", "fork", n), cmd("launch", "fork", n)),
		},
		benchCase{
			id: "launch-reexec", interleave: interleaved["launch-reexec"], group: 5, title: fmt.Sprintf("%d, bare re-exec of the ipcscript binary", n), metric: perProcess, minSecs: s.shortSecs,
			cmds: [numImpls]*command{implGo: cmd("reexec", n)},
		},
	)

	// 6. Peak RSS (VmHWM), sampled by the harness.
	idle := strconv.Itoa(s.idleMS)
	cs = append(cs,
		benchCase{
			id: "mem-sustained", group: 6, metric: maxRSS, memory: true,
			title: fmt.Sprintf("%d MiB through cap 64, largest process", s.sustained>>20),
			cmds: [numImpls]*command{
				implLua: cmd("tput", 1, 1, "64", s.sustained/s.sustainedAt, s.sustainedAt),
			},
		})
	cs = append(cs,
		benchCase{
			id: "mem-idle", group: 6, title: "1 idle process", metric: workerRSS, memory: true,
			cmds: both(cmd("idle", 1, idle), cmd("idle.py", 1, idle), cmd("idle", 1, idle)),
		},
		benchCase{
			id: "mem-run", group: 6, title: fmt.Sprintf("%d idle processes, Σ over the run", n), metric: totalRSS, memory: true,
			cmds: both(cmd("idle", n, idle), cmd("idle.py", n, idle), cmd("idle", n, idle)),
		},
	)
	// 7. A token ring: every process but one blocked at any time. Its
	// runs are long by nature and not by measurement: starting and ending
	// 256 ipcscript processes took ~6 s a run at 14:09, the timed laps 0.3
	// s; it takes at most 3 repeats, as the memory rows do. 30 laps: 10
	// were 0.08-0.13 s of timing on 2026-12-03 (hops got faster), and its
	// worst repeat read 1.2x its median.
	cs = append(cs, benchCase{
		id: "token-ring", group: 7, title: fmt.Sprintf("token ring of %d processes (C: pipes)", s.ringProcs), metric: perHop,
		maxRepeats: 3,
		cmds: [numImpls]*command{
			implLua: cmd("tokenring", s.ringProcs, s.ringLaps),
			implC:   cmd("tokenring", s.ringProcs, s.ringLaps),
		},
	})

	// 9. Tracing (issue 10): the mailbox and round-trip rows again with
	// --trace (into the harness's temporary directory), and a trace of
	// traceEvents events written as .jsonl and opened as .html.
	traced := func(c *command) *command {
		c.flags = []string{"--trace", "@tmp/" + c.prog + ".jsonl"}
		return c
	}
	cs = append(cs,
		benchCase{
			id: "trace-tput-cap64", interleave: interleaved["trace-tput-cap64"], group: 9, title: "mailbox, capacity 64, 1→1, --trace", metric: msgsPerSec, minSecs: s.shortSecs,
			cmds: [numImpls]*command{implLua: traced(cmd("tput", 1, 1, "64", s.msgs))},
		},
		benchCase{
			id: "trace-rtt-mailbox-1cpu", interleave: interleaved["trace-rtt-mailbox-1cpu"], group: 9, title: "mailbox round trip, 1 CPU, --trace", metric: perRoundTrip, cpus: []int{0},
			cmds: [numImpls]*command{implLua: traced(cmd("pingpong", "mailbox", s.rtt1))},
		},
		benchCase{
			id: "trace-jsonl", group: 9, title: fmt.Sprintf("write a %d-event trace as .jsonl", s.traceEvents), metric: seconds,
			cmds: [numImpls]*command{implGo: cmd("tracejsonl", s.traceEvents)},
		},
		benchCase{
			id: "trace-html", group: 9, title: fmt.Sprintf("open a %d-event .html in headless Chromium (first paint)", s.traceEvents), metric: seconds,
			maxRepeats: 3, // a browser's start (~4 s) each
			// The page is written by the first run, opened by the others.
			cmds: [numImpls]*command{implGo: cmd("tracehtml", s.traceEvents, fmt.Sprintf("@tmp/trace-%d.html", s.traceEvents))},
		},
	)

	// 8. Floors: what the machine itself costs, in this run. The pipe
	// round trips are the C cells of the pipe rows (one measurement).
	cs = append(cs,
		benchCase{
			id: "floor-syscall", group: 8, title: "a bare system call (getppid)", metric: perCall,
			cmds: [numImpls]*command{implC: cmd("floor", "syscall", s.syscalls)},
		},
		benchCase{
			id: "floor-pipe-1cpu", group: 8, title: "C pipe round trip, 1 CPU", metric: perRoundTrip, cpus: []int{0},
			cmds: [numImpls]*command{implC: cmd("pingpong", "pipe", s.rtt1)},
		},
		benchCase{
			id: "floor-pipe-2cpu", group: 8, title: "C pipe round trip, 2 CPUs", metric: perRoundTrip,
			cmds: [numImpls]*command{implC: cmd("pingpong", "pipe", s.rtt2)},
		},
		benchCase{
			id: "floor-spawn", interleave: interleaved["floor-spawn"], group: 8, title: fmt.Sprintf("%d spawns of a static C program, per process", n), metric: perProcess,
			cmds: [numImpls]*command{implC: cmd("launch", "spawn", n, "@exit0_static")},
		},
		benchCase{
			id: "floor-mingo", interleave: interleaved["floor-mingo"], group: 8, title: fmt.Sprintf("%d execs of an empty Go program, per process", n), metric: perProcess, minSecs: s.shortSecs,
			cmds: [numImpls]*command{implGo: cmd("reexec", n, "mingo")},
		},
	)
	return cs
}
