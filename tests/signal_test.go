package tests

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ipcscript returns a command that runs this test binary as ipcscript
// (TestMain dispatches on argv[0]).
func ipcscript(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Args[0] = "ipcscript"
	return cmd
}

// startLines starts cmd and returns a scanner over its standard output;
// the process is killed when the test ends, if it has not ended by then.
func startLines(t *testing.T, cmd *exec.Cmd) *bufio.Scanner {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return bufio.NewScanner(out)
}

// SIGINT, SIGTERM, SIGHUP or SIGQUIT to the runtime stops every child, and
// the exit code says which signal it was.
//
// The signal is sent once the supervisor has started its 3 children, a fact
// read from /proc: processes whose parent is this supervisor and whose
// names carry a tag of this test binary (another `go test` of this package
// on the machine runs the same script; matching its children by name sent
// our signal before our supervisor had started, and theirs got reported as
// ours).
func TestSignalStopsEveryChild(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
		proc string
		said string
	}{
		{syscall.SIGINT, 130, "sigint_spinner", "interrupted"},
		{syscall.SIGTERM, 143, "sigterm_sleeper", "terminated"},
		{syscall.SIGHUP, 129, "sighup_sleeper", "hung up"},
		{syscall.SIGQUIT, 131, "sigquit_sleeper", "quit"},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			proc := fmt.Sprintf("%s%d", tc.proc, os.Getpid())
			script := filepath.Join(t.TempDir(), "spin.lua")
			body := `while true do end`
			if tc.sig != syscall.SIGINT {
				body = `ipc.sleep(3600)`
			}
			os.WriteFile(script, []byte(`local ipc = require("ipc")
ipc.process("`+proc+`", {count = 3}, function() `+body+` end)
`), 0o644)
			cmd := ipcscript(script)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			marker := "[" + proc + "."
			waitChildren(t, cmd, marker, 3)
			cmd.Process.Signal(tc.sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatal("ipcscript did not stop within 60 s of the signal")
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("exit: %v; want code %d\nstderr: %s", err, tc.code, stderr.String())
			}
			if left := procsMatching(marker); len(left) > 0 {
				t.Fatalf("children left running after the runtime exited: %v", left)
			}
			// The summary says what happened, not "context canceled".
			if want := tc.said + "; stopped 3 processes"; !strings.Contains(stderr.String(), want) || strings.Contains(stderr.String(), "context canceled") {
				t.Fatalf("stderr %q, want %q", stderr.String(), want)
			}
		})
	}
}

// waitChildren waits until the supervisor cmd has n live children whose
// command line contains marker (it launches them after it handles
// signals); it fails the test if cmd exits first.
func waitChildren(t *testing.T, cmd *exec.Cmd, marker string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // guards against a hang, not a speed
	for {
		kids := childrenOf(cmd.Process.Pid, marker)
		if len(kids) == n {
			return
		}
		if time.Now().After(deadline) || cmd.Process.Signal(syscall.Signal(0)) != nil {
			cmd.Process.Kill()
			t.Fatalf("the supervisor never had its %d children %s: %v", n, marker, kids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// childrenOf lists the live (not zombie) children of ppid whose command
// line contains marker.
func childrenOf(ppid int, marker string) []string {
	var found []string
	for _, p := range procsMatching(marker) {
		pid, _, _ := strings.Cut(p, " ")
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			found = append(found, p)
		}
	}
	return found
}

// Killing the runtime itself with SIGKILL takes its children with it
// (Pdeathsig, and EOF on the control socket).
func TestChildrenDieWithTheRuntime(t *testing.T) {
	proc := fmt.Sprintf("orphan_candidate%d", os.Getpid())
	script := filepath.Join(t.TempDir(), "orphan.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
ipc.process("`+proc+`", {count = 2}, function() ipc.sleep(3600) end)
`), 0o644)
	cmd := ipcscript(script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	marker := "[" + proc + "."
	waitChildren(t, cmd, marker, 2)
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for len(procsMatching(marker)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("children outlived the runtime: %v", procsMatching(marker))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
