package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// procStat is what the harness reads of a process from /proc/PID/stat.
type procStat struct {
	pid, ppid, pgid int
	state           byte
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 3 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	pgid, _ := strconv.Atoi(string(f[2]))
	return procStat{pid: pid, ppid: ppid, pgid: pgid, state: f[0][0]}, true
}

// allProcesses lists every live (not zombie) process.
func allProcesses() []procStat {
	ents, _ := os.ReadDir("/proc")
	var ps []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readStat(pid); ok && p.state != 'Z' {
			ps = append(ps, p)
		}
	}
	return ps
}

// processes returns the pids of the live processes that match.
func processes(match func(procStat) bool) []int {
	var pids []int
	for _, p := range allProcesses() {
		if match(p) {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

func union(a, b []int) map[int]bool {
	u := make(map[int]bool, len(a)+len(b))
	for _, p := range a {
		u[p] = true
	}
	for _, p := range b {
		u[p] = true
	}
	return u
}

// parseVmHWM reads the peak resident set size, in KiB, from the VmHWM line
// of a /proc/PID/status.
func parseVmHWM(b []byte) (int64, bool) {
	i := bytes.Index(b, []byte("\nVmHWM:"))
	if i < 0 {
		return 0, false // a kernel thread, or a process on its way out
	}
	line := b[i+len("\nVmHWM:"):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	f := bytes.Fields(line) // "1234 kB"
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(f[0]), 10, 64)
	return v, err == nil
}

// rssSampler follows the process tree under a root while a run lasts and
// keeps, for every process it saw, the largest VmHWM it read. The programs
// of the memory rows keep their workers alive (sleeping) long enough to be
// sampled several times after they have started up.
//
// Reading /proc is dear on a VM whose system calls are (at 14:09, 1.1 µs a
// getppid): opening and reading a /proc/PID/status took ~40 µs quiet and
// ~110 µs at load 45, a pread of one kept open ~6-14 µs. Before, a sample
// read the stat of every process of the machine (~150) and opened the
// status of every process of the run (66 in the 64-process row): ~6 ms
// quiet, more than its 5 ms interval, so the sampler kept one of the two
// CPUs busy while the run's processes started. Now a sample reads the stat
// of a process only when it has not placed it yet (one outside the run's
// tree is not read again for outsideTTL), keeps each tree process's status
// open (the file stays bound to that process: a reused PID cannot be
// mistaken for it) and preads it, and the next sample waits at least twice
// as long as this one took, up to rssMaxWait. VmHWM is a high-water mark:
// a later read loses nothing an earlier one saw.
type rssSampler struct {
	root    int
	peak    map[int]int64     // pid -> KiB
	files   map[int]*os.File  // /proc/PID/status of the tree's live processes
	outside map[int]time.Time // pid -> when it was found outside the tree
	buf     []byte
}

const (
	rssInterval = 5 * time.Millisecond
	rssMaxWait  = 25 * time.Millisecond
	outsideTTL  = 100 * time.Millisecond
)

func newRSSSampler(root int) *rssSampler {
	s := &rssSampler{root: root, peak: map[int]int64{}, files: map[int]*os.File{},
		outside: map[int]time.Time{}, buf: make([]byte, 8<<10)}
	s.join(root)
	return s
}

func (s *rssSampler) loop(ctx context.Context) {
	defer s.close()
	for {
		t0 := time.Now()
		s.sample()
		wait := min(max(rssInterval, 2*time.Since(t0)), rssMaxWait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// join adds pid to the tree: its status is kept open from now on.
func (s *rssSampler) join(pid int) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return // gone already
	}
	s.files[pid] = f
	s.read(pid, f)
}

// read takes the VmHWM of the process behind f; when it has exited (no
// VmHWM in a zombie's status, ESRCH once reaped) it closes f.
func (s *rssSampler) read(pid int, f *os.File) {
	n, err := unix.Pread(int(f.Fd()), s.buf, 0)
	kib, ok := int64(0), false
	if err == nil {
		kib, ok = parseVmHWM(s.buf[:max(n, 0)])
	}
	if !ok {
		f.Close()
		delete(s.files, pid)
		return
	}
	if old, seen := s.peak[pid]; !seen || kib > old {
		s.peak[pid] = kib
	}
}

func (s *rssSampler) sample() {
	for pid, f := range s.files {
		s.read(pid, f)
	}
	now := time.Now()
	ents, _ := os.ReadDir("/proc")
	var fresh []procStat // processes not placed yet
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, in := s.peak[pid]; in {
			continue // in the tree, or was: a PID reused since is not followed
		}
		if at, ok := s.outside[pid]; ok && now.Sub(at) < outsideTTL {
			continue
		}
		if p, ok := readStat(pid); ok && p.state != 'Z' {
			fresh = append(fresh, p)
		}
	}
	// A new process joins the tree when its parent is in it; its parent
	// may be new too (and listed after it), so repeat until none joins.
	for joined := true; joined; {
		joined = false
		rest := fresh[:0]
		for _, p := range fresh {
			if _, in := s.files[p.ppid]; in {
				s.join(p.pid)
				joined = true
			} else {
				rest = append(rest, p)
			}
		}
		fresh = rest
	}
	for _, p := range fresh {
		s.outside[p.pid] = now
	}
}

func (s *rssSampler) close() {
	for pid, f := range s.files {
		f.Close()
		delete(s.files, pid)
	}
}

// addTo adds the run's figures: rss_total_kib, the sum over every process
// of the run (the root, every descendant seen, helpers included) of its
// peak RSS; rss_worker_kib, the largest peak RSS among the workers the
// program named in "pids" (needPids: the row wants it); rss_max_kib, the
// largest peak of any process of the run; rss_processes, how many processes
// were seen.
func (s *rssSampler) addTo(f figures, needPids bool) error {
	var total, largest int64
	for _, kib := range s.peak {
		total += kib
		largest = max(largest, kib)
	}
	f["rss_total_kib"] = float64(total)
	f["rss_max_kib"] = float64(largest)
	f["rss_processes"] = float64(len(s.peak))
	pids, _ := f["pids"].([]any)
	if !needPids {
		return nil
	}
	if len(pids) == 0 {
		return fmt.Errorf("memory run: no \"pids\" in its JSON line")
	}
	var worker int64
	var missed []int
	for _, p := range pids {
		pid, _ := p.(float64)
		kib, ok := s.peak[int(pid)]
		if !ok {
			missed = append(missed, int(pid))
		}
		worker = max(worker, kib)
	}
	if len(missed) > 0 {
		sort.Ints(missed)
		return fmt.Errorf("memory run: %d worker(s) never sampled (e.g. pid %d): let them idle longer", len(missed), missed[0])
	}
	f["rss_worker_kib"] = float64(worker)
	return nil
}
