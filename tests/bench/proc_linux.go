package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"
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

// vmHWM returns the peak resident set size of a live process, in KiB, from
// the VmHWM line of /proc/PID/status.
func vmHWM(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
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
type rssSampler struct {
	root int
	peak map[int]int64 // pid -> KiB
}

const rssInterval = 5 * time.Millisecond

func newRSSSampler(root int) *rssSampler {
	return &rssSampler{root: root, peak: map[int]int64{}}
}

func (s *rssSampler) loop(ctx context.Context) {
	t := time.NewTicker(rssInterval)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *rssSampler) sample() {
	children := map[int][]int{}
	for _, p := range allProcesses() {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	tree := []int{s.root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	for _, pid := range tree {
		if kib, ok := vmHWM(pid); ok && kib > s.peak[pid] {
			s.peak[pid] = kib
		}
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
