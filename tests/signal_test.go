package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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

// SIGINT or SIGTERM to the runtime stops every child, and the exit code
// says which signal it was.
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
			script := filepath.Join(t.TempDir(), "spin.lua")
			body := `while true do end`
			if tc.sig != syscall.SIGINT {
				body = `ipc.sleep(3600)`
			}
			os.WriteFile(script, []byte(`local ipc = require("ipc")
ipc.process("`+tc.proc+`", {count = 3}, function() `+body+` end)
`), 0o644)
			cmd := ipcscript(script)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			marker := "[" + tc.proc + "."
			// Guards against hangs, not speeds: a passing test does not wait them out.
			deadline := time.Now().Add(60 * time.Second)
			for len(procsMatching(marker)) < 3 {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("the 3 children never started: %v", procsMatching(marker))
				}
				time.Sleep(20 * time.Millisecond)
			}
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
				t.Fatalf("exit: %v; want code %d", err, tc.code)
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

// Killing the runtime itself with SIGKILL takes its children with it
// (Pdeathsig, and EOF on the control socket).
func TestChildrenDieWithTheRuntime(t *testing.T) {
	script := filepath.Join(t.TempDir(), "orphan.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
ipc.process("orphan_candidate", {count = 2}, function() ipc.sleep(3600) end)
`), 0o644)
	cmd := ipcscript(script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	marker := "[orphan_candidate."
	deadline := time.Now().Add(60 * time.Second) // a guard against a hang, not a speed
	for len(procsMatching(marker)) < 2 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("children never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline = time.Now().Add(30 * time.Second)
	for len(procsMatching(marker)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("children outlived the runtime: %v", procsMatching(marker))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
