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
		{"popen_supervisor_killed", `local f = io.popen("setsid sleep DUR &") f:close() ipc.sleep(3600)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dur := strconv.Itoa(7300 + i)
			marker := "sleep " + dur
			escaper := fmt.Sprintf("escaper%d", os.Getpid())
			script := filepath.Join(t.TempDir(), "escape.lua")
			os.WriteFile(script, []byte("local ipc = require(\"ipc\")\nipc.process(\""+escaper+"\", function() "+
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
			// Once the run's child is gone, a sleeper still alive has no
			// one left to kill it.
			if left := waitGone("["+escaper+"]", 120*time.Second); len(left) > 0 {
				killMatching(marker)
				t.Fatalf("the run's child outlived it: %v", left)
			}
			if left := waitGone(marker, 30*time.Second); len(left) > 0 {
				for _, p := range left {
					pid, _, _ := strings.Cut(p, " ")
					st, _ := os.ReadFile("/proc/" + pid + "/status")
					t.Logf("%s: %s", p, st)
				}
				killMatching(marker)
				t.Fatalf("escaped the run: %v", left)
			}
		})
	}
}

// The race TestNoEscapees cannot hit by chance: each of 3 children starts
// setsid'd daemons without pause, so the supervisor's SIGKILL lands while
// forks are in flight (one started after a child's last look at its
// descendants escaped before every exit path stopped forking first).
// Counted over every round, asserted 0.
func TestNoEscapeesWhileForking(t *testing.T) {
	n := rounds(10, 100)
	script := filepath.Join(t.TempDir(), "forker.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
ipc.process("forker_"..arg[1], {count = 3}, function()
  while true do os.execute("setsid sleep "..arg[2].." &") end
end)
`), 0o644)
	escaped, atKill := 0, 0
	for i := 0; i < n; i++ {
		tag := fmt.Sprintf("%d_%d", os.Getpid(), i)
		daemon := "sleep " + strconv.Itoa(8000+i) // a marker of this round's own
		cmd := ipcscript(script, tag, strconv.Itoa(8000+i))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second) // a guard, not a speed
		for len(procsMatching(daemon)) < 6 {         // every child is forking by now, or soon
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				killMatching(daemon)
				t.Fatalf("round %d: the daemons never started", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
		atKill += len(procsMatching(daemon))
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		marker := "[forker_" + tag + "."
		if left := waitGone(marker, 120*time.Second); len(left) > 0 {
			killMatching(marker)
			killMatching(daemon)
			t.Fatalf("round %d: children outlived the supervisor: %v", i, left)
		}
		// The children are gone: a daemon still alive has no one left to
		// kill it (one they SIGKILLed is gone as soon as it is scheduled).
		escaped += len(waitGone(daemon, 30*time.Second))
		killMatching(daemon)
	}
	t.Logf("supervisor SIGKILL x%d while 3 children start setsid'd daemons without pause: %d daemons alive at the kills, %d escaped", n, atKill, escaped)
	if escaped != 0 {
		t.Fatalf("%d setsid'd daemons escaped %d SIGKILLed supervisors", escaped, n)
	}
}

// waitGone waits until no process matches marker, up to guard (a guard
// against a hang, not a speed: a passing test does not wait it out), and
// returns what still matches.
func waitGone(marker string, guard time.Duration) []string {
	deadline := time.Now().Add(guard)
	for {
		left := procsMatching(marker)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
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
