package ipc

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// A unix socket is never at its path with a mode that lets others in, not
// even for a moment, under umask 000 in a world-writable directory: it is
// bound in a private directory, made 0600, then renamed into place. A
// watcher spinning on lstat(path) counts every sighting with group or
// other bits; before, bind-then-chmod showed 0777 sockets.
func TestUnixSocketNeverOpenToOthers(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	os.Chmod(dir, 0o1777)
	path := filepath.Join(dir, "s")
	var open, seen atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var st syscall.Stat_t
			if syscall.Lstat(path, &st) == nil {
				seen.Add(1)
				if st.Mode&0o077 != 0 {
					open.Add(1)
				}
			}
		}
	}()
	for i := 0; i < 300; i++ {
		l, err := Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil || st.Mode&0o777 != 0o600 {
			t.Fatalf("after Listen: mode %o, %v", st.Mode&0o777, err)
		}
		l.Close()
	}
	close(stop)
	wg.Wait()
	t.Logf("the watcher saw the socket %d times", seen.Load())
	if open.Load() > 0 {
		t.Fatalf("the socket was open to others %d times", open.Load())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left in the directory: %v", ents)
	}
}
