package tests

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair (posix_openpt, unlockpt, ptsname
// through ioctls): what a terminal emulator gives a shell.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pts: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// A script that runs for a while: one process blocked on a mailbox, one
// sleeping, then both finish.
const slowScript = `local ipc = require("ipc")
local box = ipc.mailbox("jobs")
ipc.process("waiter", function() local m = box:receive(); print("got " .. m.body) end)
ipc.process("sleeper", function() ipc.sleep(2.5); box:send("done") end)
`

// runOnTerminal runs ipcscript with stderr on a pseudo-terminal (stdout a
// pipe) and returns what the terminal received and what stdout did.
func runOnTerminal(t *testing.T, env []string, args ...string) (term, out string) {
	return runOnTerminalCols(t, 0, env, args...)
}

// runOnTerminalCols is runOnTerminal on a terminal cols columns wide (0:
// the size a new pseudo-terminal has).
func runOnTerminalCols(t *testing.T, cols int, env []string, args ...string) (term, out string) {
	master, slave := openPTY(t)
	if cols > 0 {
		if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: uint16(cols)}); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(t.TempDir(), "slow.lua")
	os.WriteFile(script, []byte(slowScript), 0o644)
	cmd := ipcscript(append(args, script)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close() // only the child holds it now: EOF on the master at its exit
	var got bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&got, master); close(done) }()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v\nterminal: %q", err, got.String())
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal never reached EOF")
	}
	return got.String(), stdout.String()
}

// On a terminal a run longer than a second shows a status line on stderr,
// redrawn in place and erased at the end; the output on stdout is clean.
func TestProgressOnTerminal(t *testing.T) {
	t.Parallel()
	term, out := runOnTerminal(t, []string{"NO_COLOR=", "TERM=xterm"})
	if out != "[waiter] got done\n" {
		t.Fatalf("stdout = %q", out)
	}
	if !strings.Contains(term, "\r\x1b[K\x1b[2mipcscript slow.lua ") || !strings.Contains(term, " exited · ") ||
		!(strings.Contains(term, "1 blocked") || strings.Contains(term, "1 sleeping")) {
		t.Fatalf("no status line on the terminal: %q", term)
	}
	lines := strings.Split(term, "\r\x1b[K")
	t.Logf("the last status line drawn: %q", lines[len(lines)-2])
	if !strings.HasSuffix(term, "\r\x1b[K") {
		t.Fatalf("the status line was not erased at the end: %q", term)
	}
}

// NO_COLOR: the same line without attributes.
func TestProgressNoColor(t *testing.T) {
	t.Parallel()
	term, _ := runOnTerminal(t, []string{"NO_COLOR=1", "TERM=xterm"})
	if !strings.Contains(term, "\r\x1b[Kipcscript slow.lua ") || strings.Contains(term, "\x1b[2m") {
		t.Fatalf("want a status line without colour: %q", term)
	}
}

// --progress=never, and stderr that is not a terminal: no status line.
func TestProgressOnlyOnTerminal(t *testing.T) {
	t.Parallel()
	term, _ := runOnTerminal(t, []string{"TERM=xterm"}, "--progress=never")
	if strings.Contains(term, "\r") {
		t.Fatalf("--progress=never drew: %q", term)
	}
	script := filepath.Join(t.TempDir(), "slow.lua")
	os.WriteFile(script, []byte(slowScript), 0o644)
	cmd := ipcscript(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stderr.String(), "\r") || strings.Contains(stderr.String(), "\x1b") {
		t.Fatalf("a status line into a pipe: %q", stderr.String())
	}
}

// The line is cut to the terminal's width: a wrapped line could not be
// erased with \r.
func TestProgressFitsTheTerminal(t *testing.T) {
	t.Parallel()
	term, _ := runOnTerminalCols(t, 30, []string{"NO_COLOR=1", "TERM=xterm"})
	var drawn int
	for _, line := range strings.Split(term, "\r\x1b[K") {
		if strings.HasPrefix(line, "ipcscript slow.lua") {
			drawn++
			if n := len([]rune(line)); n > 29 {
				t.Fatalf("a %d-column status line on a 30-column terminal: %q", n, line)
			}
		}
	}
	if drawn == 0 {
		t.Fatalf("no status line: %q", term)
	}
}
