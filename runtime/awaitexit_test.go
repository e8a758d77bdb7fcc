package runtime

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// awaitExit returns when the child has exited, not before, and leaves it
// for cmd.Wait to reap with its status; a child it was given no pidfd for
// is left to cmd.Wait at once.
func TestAwaitExit(t *testing.T) {
	for _, withPidfd := range []bool{true, false} {
		cmd := exec.Command("sh", "-c", "read x; exit 3")
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		pidfd := -1
		if withPidfd {
			cmd.SysProcAttr = &syscall.SysProcAttr{PidFD: &pidfd}
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if withPidfd && pidfd < 0 {
			t.Skip("no pidfd from clone on this kernel")
		}
		done := make(chan struct{})
		go func() { awaitExit(pidfd); close(done) }()
		if withPidfd {
			select {
			case <-done:
				t.Fatal("awaitExit returned while the child ran")
			case <-time.After(50 * time.Millisecond):
			}
		}
		in.Write([]byte("go\n"))
		<-done
		err = cmd.Wait()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
			t.Fatalf("pidfd %v: Wait after awaitExit: %v, state %v", withPidfd, err, cmd.ProcessState)
		}
	}
}
