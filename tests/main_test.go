// Package tests holds the end-to-end tests: scripts run by the real
// ipcscript command line (testscript files in testdata/) and Go tests that
// launch the binary and poke at its processes from outside.
package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ipcscript/ipcscript/cmd/ipcscript/cli"
	"github.com/ipcscript/ipcscript/runtime"
)

func TestMain(m *testing.M) {
	quickRaceExit()
	// The test binary is also the ipcscript binary: testscript runs it as
	// "ipcscript", and the runtime re-executes it for every child process.
	runtime.Child(runtime.Options{})
	testscript.Main(m, map[string]func(){
		"ipcscript": func() { os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		// The scripts' work directories under the test's own temporary
		// directory, which the testing package removes: testscript's own
		// root in /tmp is removed by its last script, so a run filtered
		// with -run (the others never start) left an empty
		// /tmp/go-test-script* behind each time.
		WorkdirRoot: t.TempDir(),
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"noprocs": cmdNoProcs,
		},
		Setup: func(e *testscript.Env) error {
			// testscript gives each script a fresh environment.
			e.Setenv("GORACE", os.Getenv("GORACE"))
			// scripts/ is reachable from every test as $SCRIPTS.
			wd, _ := os.Getwd()
			e.Setenv("SCRIPTS", filepath.Join(wd, "..", "scripts"))
			return nil
		},
	})
}

// quickRaceExit makes every process this test binary starts (each child
// of a run is this binary again) exit at once. A -race binary that exits
// 0 sleeps first, 1 s by default (GORACE atexit_sleep_ms: time for other
// goroutines to report a race), and a run's processes exit one after
// another, so the sleeps added up to most of this package's time while
// the machine sat idle. A race found before the exit is still reported,
// and still makes the exit code 66.
func quickRaceExit() {
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
}

// noprocs MARKER: no process whose command line contains MARKER is alive
// (children are named "<argv0> [name]"); waits for stragglers up to a
// guard far beyond what a busy machine needs (a passing test does not wait).
func cmdNoProcs(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: noprocs MARKER")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := procsMatching(args[0])
		if len(left) == 0 || time.Now().After(deadline) {
			if len(left) > 0 && !neg {
				ts.Fatalf("processes left behind: %s", strings.Join(left, "; "))
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procsMatching lists live processes whose command line contains marker.
func procsMatching(marker string) []string {
	var found []string
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		s := strings.ReplaceAll(string(cmd), "\x00", " ")
		if strings.Contains(s, marker) {
			stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if strings.Contains(string(stat), ") Z ") {
				continue // a zombie of someone else's making is not ours to reap
			}
			found = append(found, fmt.Sprintf("%d %s", pid, s))
		}
	}
	return found
}
