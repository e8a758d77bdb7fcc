package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Nothing a run starts outlives it (issue 13): a setsid'd grandchild, a
// plain background child, a double fork, with the run ending normally or
// the supervisor SIGKILLed. Each case's sleeper sleeps a duration of its
// own (DUR), which finds it in the process list.
func TestNoEscapees(t *testing.T) {
	for i, tc := range []struct{ name, body string }{
		{"setsid_normal_end", `os.execute("setsid sleep DUR &")`},
		{"background_normal_end", `os.execute("sleep DUR &")`},
		{"setsid_supervisor_killed", `os.execute("setsid sleep DUR &") ipc.sleep(3600)`},
		{"background_supervisor_killed", `os.execute("sleep DUR &") ipc.sleep(3600)`},
		{"double_fork_supervisor_killed", `os.execute("(setsid sh -c 'sleep DUR & wait' &)") ipc.sleep(3600)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dur := strconv.Itoa(7300 + i)
			marker := "sleep " + dur
			script := filepath.Join(t.TempDir(), "escape.lua")
			os.WriteFile(script, []byte("local ipc = require(\"ipc\")\nipc.process(\"escaper\", function() "+
				strings.ReplaceAll(tc.body, "DUR", dur)+" end)\n"), 0o644)
			cmd := ipcscript(script)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(tc.name, "_killed") {
				deadline := time.Now().Add(60 * time.Second) // a guard, not a speed
				for len(procsMatching(marker)) == 0 {
					if time.Now().After(deadline) {
						cmd.Process.Kill()
						t.Fatal("the background sleeper never started")
					}
					time.Sleep(20 * time.Millisecond)
				}
				cmd.Process.Signal(syscall.SIGKILL)
			}
			cmd.Wait()
			deadline := time.Now().Add(10 * time.Second)
			for len(procsMatching(marker)) > 0 {
				if time.Now().After(deadline) {
					left := procsMatching(marker)
					killMatching(marker)
					t.Fatalf("escaped the run: %v", left)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// killMatching SIGKILLs what procsMatching finds (a failed test's leftovers).
func killMatching(marker string) {
	for _, p := range procsMatching(marker) {
		var pid int
		if _, err := fmt.Sscan(p, &pid); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// A FIFO and a unix socket at paths the script gave are recorded in the
// run directory, so the next run removes them when the supervisor was
// SIGKILLed before it could; the same script then runs again. Before,
// they survived (196/200) and the next run failed with "file exists".
func TestGivenPathsSweptAfterSupervisorKill(t *testing.T) {
	dir := t.TempDir()
	fifo, sock := filepath.Join(dir, "given.fifo"), filepath.Join(dir, "given.sock")
	script := filepath.Join(dir, "given.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
local f = ipc.fifo("f", {path = "`+fifo+`"})
local l = ipc.listen("unix", "`+sock+`")
ipc.process("given_holder", function() ipc.sleep(tonumber(arg[1])) end)
`), 0o644)
	cmd := ipcscript(script, "3600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(procsMatching("[given_holder]")) == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the run never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// Any run sweeps what dead runs left, so on a machine where other runs
	// start (other tests, other users) one may have swept these already
	// (seen under tests/stress.sh): what counts is that the next run leaves
	// none of them.
	for _, p := range []string{fifo, sock} {
		if _, err := os.Lstat(p); err != nil {
			t.Logf("%s: %v (swept already by another run?)", p, err)
		}
	}
	out, err := ipcscript(script, "0").CombinedOutput()
	if err != nil {
		t.Fatalf("the next run: %v\n%s", err, out)
	}
	for _, p := range []string{fifo, sock} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s survived the next run", p)
		}
	}
}
