package ipc

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	registerChild("kern-rundir-killed", kernChildRunDirKilled)
}

// newTestRunDir makes a run directory that is removed at cleanup, and
// checks then that the run left nothing behind: no directory in /tmp, no
// queue in /dev/mqueue (where it is mounted).
func newTestRunDir(tb testing.TB) *RunDir {
	tb.Helper()
	d, err := NewRunDir()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := d.Remove(); err != nil {
			tb.Error(err)
		}
		checkRunGone(tb, d.Dir(), d.ID())
	})
	return d
}

// checkRunGone fails the test if anything of run id is left.
func checkRunGone(tb testing.TB, dir, id string) {
	tb.Helper()
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		tb.Errorf("run directory %s left behind (%v)", dir, err)
	}
	ents, _ := os.ReadDir(mqueueDir)
	for _, e := range ents {
		if strings.Contains(e.Name(), id) {
			tb.Errorf("message queue %s/%s left behind", mqueueDir, e.Name())
		}
	}
}

func TestRunDir(t *testing.T) {
	d := newTestRunDir(t)
	if len(d.ID()) != 16 || d.Dir() != "/tmp/ipcscript-"+d.ID() {
		t.Fatalf("id %q dir %q", d.ID(), d.Dir())
	}
	st, err := os.Lstat(d.Dir())
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("run directory: %v %v", st.Mode(), err)
	}
	o, err := readOwner(d.Dir(), d.ID())
	if err != nil || o.pid != os.Getpid() || o.uid != os.Getuid() || !o.alive() {
		t.Fatalf("owner %+v %v", o, err)
	}
	p, err := d.Path("jobs")
	if err != nil || p != filepath.Join(d.Dir(), "jobs") {
		t.Fatalf("Path = %q %v", p, err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "x\x00"} {
		if _, err := d.Path(bad); err == nil {
			t.Errorf("Path(%q) accepted", bad)
		}
	}
	k, err := d.MqueueName("my orders/1")
	if err != nil || k != "/ipcscript."+d.ID()+".my_orders_1" {
		t.Fatalf("MqueueName = %q %v", k, err)
	}
	if got := recordedMqueues(d.Dir(), d.ID()); len(got) != 1 || got[0] != k {
		t.Fatalf("recorded %q", got)
	}
	od, err := OpenRunDir(d.Dir())
	if err != nil || od.ID() != d.ID() {
		t.Fatalf("OpenRunDir: %v", err)
	}
	if _, err := OpenRunDir("/tmp"); err == nil {
		t.Fatal("OpenRunDir(/tmp) accepted")
	}
	// A live run is never stale.
	removed, err := CleanStale()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range removed {
		if r == d.Dir() {
			t.Fatal("CleanStale removed a live run")
		}
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

// TestCleanStaleKilledRun: a run whose supervisor was killed leaves its
// directory, a FIFO and a message queue; CleanStale removes all three and
// nothing that is not provably ours.
func TestCleanStaleKilledRun(t *testing.T) {
	c := startChild(t, "kern-rundir-killed", nil)
	var dir, kname string
	waitFor(t, "the child's run directory", func() bool {
		out := c.out.String()
		if !strings.HasSuffix(out, "\n") {
			return false
		}
		f := strings.Fields(out)
		if len(f) != 2 {
			t.Fatalf("child said %q", out)
		}
		dir, kname = f[0], f[1]
		return true
	})
	id := strings.TrimPrefix(filepath.Base(dir), runDirPrefix)
	defer removeRun(dir, id) // in case the test fails

	// Things CleanStale must leave alone: a symlink with a run's name, a
	// directory without an owner file, one whose owner file names another
	// run.
	decoys := []string{
		"/tmp/ipcscript-" + strings.Repeat("a", 16),
		"/tmp/ipcscript-" + strings.Repeat("b", 16),
		"/tmp/ipcscript-" + strings.Repeat("c", 16),
	}
	for _, p := range decoys {
		defer os.RemoveAll(p)
	}
	target := t.TempDir()
	if err := os.Symlink(target, decoys[0]); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(decoys[1], 0o700)
	os.Mkdir(decoys[2], 0o700)
	os.WriteFile(filepath.Join(decoys[2], ownerFile), []byte("ipcscript run 0123456789abcdef\npid 1\nstart 1\nuid 0\n"), 0o600)

	removed, err := CleanStale()
	if err != nil {
		t.Fatal(err)
	}
	if contains(removed, dir) {
		t.Fatal("CleanStale removed the run of a live supervisor")
	}
	c.kill() // the supervisor dies without cleaning up
	removed, err = CleanStale()
	if err != nil {
		t.Fatal(err)
	}
	if !contains(removed, dir) {
		// Any run on the machine calls CleanStale when it starts: another
		// may have removed the dead run first (seen under tests/stress.sh).
		if _, err := os.Lstat(dir); err == nil {
			t.Fatalf("CleanStale removed %q, not the killed run's %s", removed, dir)
		}
		t.Logf("%s was removed by another run's CleanStale first", dir)
	}
	checkRunGone(t, dir, id)
	if err := mqProbe(kname); err != unix.ENOENT {
		t.Fatalf("queue %s still exists (%v)", kname, err)
	}
	for _, p := range decoys {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("CleanStale removed %s", p)
		}
	}
	if _, err := os.Stat(target); err != nil {
		t.Errorf("CleanStale followed the symlink: %v", err)
	}
}

// kernChildRunDirKilled makes a run directory with a FIFO and a queue in it,
// says where, and waits to be killed.
func kernChildRunDirKilled() {
	d, err := NewRunDir()
	if err != nil {
		childFatalf("%v", err)
	}
	p, _ := d.Path("jobs")
	if err := MakeFifo(p); err != nil {
		childFatalf("%v", err)
	}
	kname, err := d.MqueueName("orders")
	if err != nil {
		childFatalf("%v", err)
	}
	if _, err := NewMqueue("orders", kname, 2, 16); err != nil {
		childFatalf("%v", err)
	}
	fmt.Printf("%s %s\n", d.Dir(), kname)
	time.Sleep(time.Hour)
}

// TestCleanStalePidReused: an owner file naming a live pid with another
// start time is a run that is gone (the pid was reused).
func TestCleanStalePidReused(t *testing.T) {
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	dir := "/tmp/ipcscript-" + id
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Skipf("cannot make %s: %v", dir, err)
	}
	defer os.RemoveAll(dir)
	st, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	owner := fmt.Sprintf("ipcscript run %s\npid %d\nstart %d\nuid %d\n", id, os.Getpid(), st.start+1, os.Getuid())
	os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o600)
	removed, err := CleanStale()
	if err != nil {
		t.Fatal(err)
	}
	if !contains(removed, dir) {
		t.Fatalf("CleanStale removed %q, not %s", removed, dir)
	}
}

func TestReadProcStat(t *testing.T) {
	st, err := readProcStat(os.Getpid())
	if err != nil || st.state != 'R' && st.state != 'S' || st.start == 0 {
		t.Fatalf("%+v %v", st, err)
	}
	if _, err := readProcStat(1 << 30); !os.IsNotExist(err) {
		t.Fatalf("no such pid: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
