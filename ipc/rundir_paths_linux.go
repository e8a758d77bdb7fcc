package ipc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pathsFile records the FIFOs and unix sockets a run made at paths the
// script gave (outside the run directory), one a line:
//
//	<dev> <ino> <uid> "<path>"
//
// so that when the supervisor dies before removing them (SIGKILL, OOM),
// the next run's CleanStale removes them: only if the file at the path is
// still the one the run made (same device and inode) and ours (our uid).
// Before, such a FIFO survived and the next run failed with "file exists".
const pathsFile = "paths"

// RecordPath notes that the run made the FIFO or socket at path.
func (d *RunDir) RecordPath(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: abs, Err: err}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(d.dir, pathsFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("recording %s: %w", abs, err)
	}
	_, err = fmt.Fprintf(f, "%d %d %d %s\n", st.Dev, st.Ino, st.Uid, strconv.Quote(abs))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeRecordedPaths removes the recorded paths that are still the run's.
func removeRecordedPaths(dir string) error {
	b, err := readNoFollow(dir, pathsFile, 1<<20)
	if err != nil {
		return nil // none recorded
	}
	var first error
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 {
			continue
		}
		dev, err1 := strconv.ParseUint(f[0], 10, 64)
		ino, err2 := strconv.ParseUint(f[1], 10, 64)
		uid, err3 := strconv.Atoi(f[2])
		path, err4 := strconv.Unquote(f[3])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || uid != os.Getuid() || !filepath.IsAbs(path) {
			continue
		}
		var st unix.Stat_t
		if unix.Lstat(path, &st) != nil || st.Dev != dev || st.Ino != ino || int(st.Uid) != uid {
			continue // gone, or no longer the one the run made
		}
		if t := st.Mode & unix.S_IFMT; t != unix.S_IFIFO && t != unix.S_IFSOCK {
			continue
		}
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) && first == nil {
			first = err
		}
	}
	return first
}
