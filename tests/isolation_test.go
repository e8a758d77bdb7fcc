package tests

import (
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// probeUser is the unprivileged user the isolation tests create (root
// bypasses what they check, so they run as a user of their own).
const probeUser = "ipcscript-probe"

// asProbeUser returns the uid and gid of probeUser, creating the user
// when the test runs as root; it skips the test otherwise.
func asProbeUser(t *testing.T) (uint32, uint32) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to create a second user (CI runs as root)")
	}
	u, err := user.Lookup(probeUser)
	if err != nil {
		if _, lerr := exec.LookPath("useradd"); lerr != nil {
			t.Skip("useradd is not installed")
		}
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/bin/sh", probeUser).CombinedOutput(); err != nil {
			t.Skipf("useradd: %v: %s", err, out)
		}
		if u, err = user.Lookup(probeUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uint32(uid), uint32(gid)
}

// sharedDir is a directory the probe user can read: the test binary (as
// ipcscript) and scripts are copied there.
func sharedDir(t *testing.T) (dir, exe string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "ipcscript-isolation-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exe = filepath.Join(dir, "ipcscript")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(dst, src)
	dst.Close()
	return dir, exe
}

// Another process of the same user cannot open a run's objects through
// /proc/PID/fd nor read its environment (PR_SET_DUMPABLE 0): before, a
// process of one run read and overwrote another run's shared memory this
// way (SECRET-ANSWER-42 -> TAMPEREDNSWER-42).
func TestOtherProcessesOfTheUserCannotOpenARunsObjects(t *testing.T) {
	uid, gid := asProbeUser(t)
	dir, exe := sharedDir(t)
	script := filepath.Join(dir, "secret.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
local mem = ipc.shm("secret", 64)
local box = ipc.mailbox("box")
ipc.process("secret_holder", function()
  mem:write(0, "SECRET-ANSWER-42")
  box:send("SECRET-IN-A-MAILBOX")
  ipc.sleep(60)
end)
`), 0o644)
	cred := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	run := exec.Command(exe, "--timeout", "60", script)
	run.Args[0] = "ipcscript"
	run.Dir, run.SysProcAttr = dir, cred
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { run.Process.Kill(); run.Wait() }()
	var pid int
	deadline := time.Now().Add(60 * time.Second)
	for pid == 0 {
		if left := procsMatching("[secret_holder]"); len(left) > 0 {
			pid, _ = strconv.Atoi(strings.Fields(left[0])[0])
		} else if time.Now().After(deadline) {
			t.Fatal("the run never started")
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond) // the body has written its secret
	// The supervisor and the child, probed by another process of the same
	// user: every descriptor and the environment.
	for _, target := range []int{run.Process.Pid, pid} {
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(target) + "/fd") // as root
		if err != nil {
			t.Fatal(err)
		}
		probes := []string{"/proc/" + strconv.Itoa(target) + "/environ"}
		for _, e := range ents {
			probes = append(probes, "/proc/"+strconv.Itoa(target)+"/fd/"+e.Name())
		}
		for _, p := range probes {
			link, _ := os.Readlink(p)
			if strings.HasSuffix(p, "/fd/0") || strings.HasSuffix(p, "/fd/1") || strings.HasSuffix(p, "/fd/2") {
				continue // a pipe or /dev/null: blocking to read, and not the run's
			}
			probe := exec.Command("timeout", "2", "head", "-c", "4096", p)
			probe.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
			out, err := probe.CombinedOutput()
			if err == nil || strings.Contains(string(out), "SECRET") {
				t.Errorf("pid %d: the user's other process opened %s (%s): err=%v out=%q", target, p, link, err, out)
			}
		}
	}
}
