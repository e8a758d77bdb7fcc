package runtime

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
		polled := false
		go func() { polled = awaitExit(pidfd); close(done) }()
		if withPidfd {
			select {
			case <-done:
				t.Fatal("awaitExit returned while the child ran")
			case <-time.After(50 * time.Millisecond):
			}
		}
		in.Write([]byte("go\n"))
		<-done
		if polled != withPidfd {
			t.Errorf("pidfd %v: awaitExit of a running child waited in the netpoller: %v, want %v", withPidfd, polled, withPidfd)
		}
		err = cmd.Wait()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
			t.Fatalf("pidfd %v: Wait after awaitExit: %v, state %v", withPidfd, err, cmd.ProcessState)
		}
	}
}

// A child that has exited already (the usual case once its control socket
// ended) is seen at once, without the netpoller, and left for cmd.Wait.
func TestAwaitExitOfAnExitedChild(t *testing.T) {
	cmd := exec.Command("sh", "-c", "exit 3")
	pidfd := -1
	cmd.SysProcAttr = &syscall.SysProcAttr{PidFD: &pidfd}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if pidfd < 0 {
		t.Skip("no pidfd from clone on this kernel")
	}
	var info unix.Siginfo // wait for the exit, reaping nothing
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	if awaitExit(pidfd) {
		t.Error("awaitExit waited in the netpoller for a child that had exited")
	}
	cmd.Wait()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("Wait after awaitExit: state %v", cmd.ProcessState)
	}
}
