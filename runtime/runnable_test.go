package runtime

import (
	"os/exec"
	"testing"
	"time"
)

// A busy process is runnable whether or not it has a CPU; a sleeping one
// is not; neither is one that is gone. The deadlock watch relies on the
// first two: a woken process that has not run yet is not deadlocked.
func TestRunnable(t *testing.T) {
	busy := exec.Command("sh", "-c", "while :; do :; done")
	sleeper := exec.Command("sleep", "60")
	for _, c := range []*exec.Cmd{busy, sleeper} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func(c *exec.Cmd) { c.Process.Kill(); c.Wait() }(c)
	}
	// The sleeper is runnable until it reaches its sleep: wait for that
	// fact (state S), not for a time.
	for i := 0; runnable(sleeper.Process.Pid); i++ {
		if i == 10000 {
			t.Fatalf("sleep %d never went to sleep", sleeper.Process.Pid)
		}
		time.Sleep(time.Millisecond)
	}
	if !runnable(busy.Process.Pid) {
		t.Errorf("a busy loop (pid %d) is not runnable", busy.Process.Pid)
	}
	sleeper.Process.Kill()
	sleeper.Wait()
	if runnable(sleeper.Process.Pid) {
		t.Errorf("a reaped process (pid %d) is runnable", sleeper.Process.Pid)
	}
	if runnable(0) || runnable(-1) {
		t.Error("pid 0 or -1 is runnable")
	}
}
