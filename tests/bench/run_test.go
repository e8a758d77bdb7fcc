package main

import (
	"context"
	"os"
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
