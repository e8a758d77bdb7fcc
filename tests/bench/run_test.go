package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunReadsLastJSONLine(t *testing.T) {
	f, err := run{argv: []string{"sh", "-c", `echo '{"a":1}'; echo noise; echo '[ping] {"ns_per_op":5,"ok":true}'`}, timeout: 10 * time.Second}.start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f["ns_per_op"] != 5.0 {
		t.Errorf("got %v, want the last JSON line, its prefix removed", f)
	}
}

func TestRunFailsOnItsOwnCheck(t *testing.T) {
	_, err := run{argv: []string{"sh", "-c", `echo '{"ns_per_op":5,"ok":false}'`}, timeout: 10 * time.Second}.start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "own check failed") {
		t.Errorf("err = %v, want the program's failed check", err)
	}
}

// A process that escapes the run's process group and keeps its stdout open
// is found, killed and reported, and does not hold the run up.
func TestRunKillsWhatItLeavesBehind(t *testing.T) {
	if err := becomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	// Had the leaked process held the run up, the run would end by its
	// timeout (the process sleeps far longer), not by reporting the leak.
	_, err := run{argv: []string{"sh", "-c", `setsid sleep 3600 & echo '{"ok":true}'`}, timeout: 60 * time.Second}.start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "left 1 process(es) behind") {
		t.Errorf("err = %v, want a leak reported", err)
	}
	if left := processes(func(p procStat) bool { return p.ppid == os.Getpid() }); len(left) > 0 {
		t.Errorf("still running: %v", left)
	}
}

func TestRunTimesOut(t *testing.T) {
	// The command would sleep an hour: only the timeout ends it.
	_, err := run{argv: []string{"sh", "-c", `sleep 3600; echo '{"ok":true}'`}, timeout: 200 * time.Millisecond}.start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("err = %v, want a timeout", err)
	}
}

func TestRunPinsToCPU(t *testing.T) {
	f, err := run{argv: []string{"sh", "-c", `printf '{"cpus":"%s"}\n' "$(grep Cpus_allowed_list /proc/self/status | cut -f2)"`}, cpus: []int{0}, timeout: 10 * time.Second}.start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f["cpus"] != "0" {
		t.Errorf("the run may use CPUs %v, want 0", f["cpus"])
	}
}

// The memory rows' sampler finds every process of a run's tree, its
// grandchildren too (a parent listed after its child in /proc included),
// and only those: a shell, two children and a grandchild that sleep.
func TestRunSamplesEveryProcessOfTheTree(t *testing.T) {
	f, err := run{argv: []string{"sh", "-c", `sleep 0.3 & sh -c 'sleep 0.3 & wait' & wait; echo '{"ok":true}'`},
		sampleRSS: true, timeout: 30 * time.Second}.start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := f["rss_processes"]; n != 4.0 {
		t.Errorf("sampled %v processes, want 4 (sh, sleep, sh, sleep)", n)
	}
	if kib, _ := f["rss_max_kib"].(float64); kib <= 0 {
		t.Errorf("rss_max_kib = %v, want a peak", f["rss_max_kib"])
	}
}

// Runs of a short command gathered into one (benchCase.minSecs): the
// per-process figure is over every process of every run, not a mean of
// the runs' figures.
func TestMergeRounds(t *testing.T) {
	a := figures{"ns_per_op": 1e6, "ops": 64.0, "secs": 0.064, "wall_secs": 0.07, "after_exit_secs": 1e-5, "ok": true}
	b := figures{"ns_per_op": 3e6, "ops": 32.0, "secs": 0.096, "wall_secs": 0.1, "after_exit_secs": 2e-5, "ok": true}
	got := mergeRounds(mergeRounds(a, b, "ns_per_op"), a, "ns_per_op")
	want := figures{"ns_per_op": (0.064 + 0.096 + 0.064) * 1e9 / 160, "ops": 160.0, "secs": 0.224, "wall_secs": 0.24, "after_exit_secs": 2e-5, "ok": true, "rounds": 3.0}
	for k, w := range want {
		g := got[k]
		if gf, ok := g.(float64); ok {
			if wf := w.(float64); gf < wf*(1-1e-9) || gf > wf*(1+1e-9) {
				t.Errorf("%s = %v, want %v", k, g, w)
			}
		} else if g != w {
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// A rate: every message over every second, not a mean of the rates.
	r := mergeRounds(figures{"msgs_per_s": 2e6, "ops": 200000.0, "secs": 0.1}, figures{"msgs_per_s": 1e6, "ops": 200000.0, "secs": 0.2}, "msgs_per_s")
	if v := r["msgs_per_s"].(float64); v < 1333333 || v > 1333334 {
		t.Errorf("merged rate %v, want 400000/0.3", v)
	}
	r = mergeRounds(figures{"mb_per_s": 4000.0, "bytes": 4e8, "secs": 0.1}, figures{"mb_per_s": 1000.0, "bytes": 4e8, "secs": 0.4}, "mb_per_s")
	if v := r["mb_per_s"].(float64); v < 1599.99 || v > 1600.01 {
		t.Errorf("merged bandwidth %v, want 8e8 bytes in 0.5 s", v)
	}
	// mem:read says no bytes, only its reads: the rate is still over the
	// seconds.
	r = mergeRounds(figures{"mb_per_s": 40000.0, "ops": 20000.0, "secs": 0.0328}, figures{"mb_per_s": 20000.0, "ops": 20000.0, "secs": 0.0656}, "mb_per_s")
	if v := r["mb_per_s"].(float64); v < 26666 || v > 26667 {
		t.Errorf("merged bandwidth %v, want 40000 reads of 64 KiB in 0.0984 s", v)
	}
}

// The cells a target reads are the ones that take 5 repeats and gather
// runs: the launch target's Lua cell is launch-spawn's (targetRowAlias).
func TestTargetCells(t *testing.T) {
	for _, k := range []string{"launch-spawn/lua", "launch-reexec/go", "floor-mingo/go", "tput-cap64/c", "tput-cap64/lua", "tput-cap64/py", "trace-tput-cap64/lua", "rtt-link-2cpu/c"} {
		if !targetCells[k] {
			t.Errorf("%s is read by a target but not in targetCells", k)
		}
	}
	for _, k := range []string{"launch-reexec/lua", "launch-fork/c", "tput-cap64/go", "rtt-link-2cpu/py", "rtt-pipe-1cpu/c"} {
		if targetCells[k] {
			t.Errorf("%s is in targetCells, but no target reads it", k)
		}
	}
	if targetRows["rtt-unix-1cpu"] || targetRows["trace-rtt-mailbox-1cpu"] || !targetRows["token-ring"] {
		t.Errorf("targetRows %v", targetRows)
	}
}

// In one repeat, a cell a target reads gathers runs of its command in
// turns with the other cells until it has measured minSecs in at least
// minRounds runs; a cell no target reads runs once.
func TestMeasureGathersTargetCellsInTurns(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "tick")
	// Each run logs its argument and says it measured 0.1 s of 10 operations.
	body := "#!/bin/sh\necho \"$1\" >> " + filepath.Join(dir, "log") + "\necho '{\"ns_per_op\":1e7,\"ops\":10,\"secs\":0.1,\"ok\":true}'\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	targetCells["fake-target/c"] = true
	defer delete(targetCells, "fake-target/c")
	b := &bench{work: dir, cBins: map[string]string{"tick": script}, o: options{timeout: time.Minute}}
	read := &measurement{im: implC, cmd: cmd("tick", "read")}
	other := &measurement{im: implC, cmd: cmd("tick", "other")}
	var row rowResult
	b.measure(context.Background(), []*cellRun{
		{c: benchCase{id: "fake-target", metric: perRoundTrip, minSecs: 0.25}, m: read, row: &row},
		{c: benchCase{id: "fake-other", metric: perRoundTrip, minSecs: 0.25}, m: other, row: &row},
	})
	if read.err != nil || other.err != nil || len(read.runs) != 1 || len(other.runs) != 1 {
		t.Fatalf("runs %v (%v), %v (%v)", read.runs, read.err, other.runs, other.err)
	}
	if f := read.runs[0]; f["rounds"] != 3.0 || f["ops"] != 30.0 {
		t.Errorf("the target's cell: %v, want 3 rounds of 10 operations", f)
	}
	if f := other.runs[0]; f["rounds"] != nil || f["ops"] != 10.0 {
		t.Errorf("the other cell: %v, want one run", f)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	if got := strings.Fields(string(log)); strings.Join(got, " ") != "read other read read" {
		t.Errorf("runs in the order %v, want read other read read", got)
	}
}
