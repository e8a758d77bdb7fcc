package ipc

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// RunDir is the private directory of one run, /tmp/ipcscript-<runid> (mode
// 0700): FIFOs and unix sockets live in it, and it records the POSIX message
// queues the run created. An "owner" file names the supervisor (pid and
// start time), so that a later run can tell a directory whose run is gone
// (killed before it could clean up) from one that is still running, and
// CleanStale removes the former with everything the run left behind.
//
// Layout:
//
//	/tmp/ipcscript-<runid>/owner     "ipcscript run <runid>\npid P\nstart T\nuid U\n"
//	/tmp/ipcscript-<runid>/mqueues   kernel names of the run's message queues, one a line
//	/tmp/ipcscript-<runid>/<name>    FIFOs, unix sockets
type RunDir struct {
	id, dir string
	mu      sync.Mutex // serialises appends to mqueues
}

const (
	runDirBase   = "/tmp"
	runDirPrefix = "ipcscript-"
	mqueueDir    = "/dev/mqueue"
	ownerFile    = "owner"
	mqueuesFile  = "mqueues"
	runIDLen     = 16 // hex digits
)

// isRunDirName reports whether name is "ipcscript-" and 16 lowercase hex
// digits. (Not a regexp: compiling one in a package variable cost every
// process start, children included, more than the rest of this package's
// initialisation.)
func isRunDirName(name string) bool {
	hex, ok := strings.CutPrefix(name, "ipcscript-")
	if !ok || len(hex) != 16 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NewRunDir creates a fresh run directory with a random run id.
func NewRunDir() (*RunDir, error) { return newRunDirIn(runDirBase) }

func newRunDirIn(base string) (*RunDir, error) {
	for try := 0; ; try++ {
		var b [runIDLen / 2]byte
		if err := RandomBytes(b[:]); err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
		id := hex.EncodeToString(b[:])
		dir := filepath.Join(base, runDirPrefix+id)
		// mkdir does not follow a symlink in the last component and fails
		// when anything exists there: the directory is ours alone.
		err := os.Mkdir(dir, 0o700)
		if errors.Is(err, os.ErrExist) && try < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
		d := &RunDir{id: id, dir: dir}
		if err := d.writeOwner(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("run directory %s: %w", dir, err)
		}
		return d, nil
	}
}

func (d *RunDir) writeOwner() error {
	if err := os.Chmod(d.dir, 0o700); err != nil { // whatever the umask
		return err
	}
	pid := os.Getpid()
	st, err := readProcStat(pid)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(d.dir, ownerFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "ipcscript run %s\npid %d\nstart %d\nuid %d\n", d.id, pid, st.start, os.Getuid())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// OpenRunDir attaches to the run directory dir made by NewRunDir (a child
// gets its path from the supervisor). It checks that dir is a real
// directory of ours, not a symlink.
func OpenRunDir(dir string) (*RunDir, error) {
	base := filepath.Base(dir)
	if !isRunDirName(base) {
		return nil, fmt.Errorf("run directory %s: not an ipcscript run directory name", dir)
	}
	if err := checkOurDir(dir); err != nil {
		return nil, fmt.Errorf("run directory %s: %w", dir, err)
	}
	return &RunDir{id: strings.TrimPrefix(base, runDirPrefix), dir: dir}, nil
}

// ID is the run id: 16 hex digits.
func (d *RunDir) ID() string { return d.id }

// Dir is the directory's path.
func (d *RunDir) Dir() string { return d.dir }

// Path returns where the object called name lives in the run directory (a
// FIFO, a unix socket). name must be one path component.
func (d *RunDir) Path(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 200 {
		return "", fmt.Errorf("run directory: %q cannot name a file (one path component, no '/', at most 200 bytes)", name)
	}
	return filepath.Join(d.dir, name), nil
}

// MqueueName returns the kernel name for the run's message queue called
// name, "/ipcscript.<runid>.<name>" (bytes other than letters, digits, '.',
// '_' and '-' become '_'), and records it in the run directory so that
// Remove and a later CleanStale can unlink the queue even where /dev/mqueue
// is not mounted.
func (d *RunDir) MqueueName(name string) (string, error) {
	kname := MqueueKernelName(d.id, name)
	if len(kname) > 255 {
		return "", fmt.Errorf("mqueue %q: name too long for a kernel name (%d bytes, at most 255)", name, len(kname))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(d.dir, mqueuesFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return "", fmt.Errorf("mqueue %q: recording its name: %w", name, err)
	}
	_, err = f.WriteString(kname + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("mqueue %q: recording its name: %w", name, err)
	}
	return kname, nil
}

// MqueueKernelName is the kernel name of queue name in run runID.
func MqueueKernelName(runID, name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return "/" + mqueuePrefix(runID) + string(b)
}

func mqueuePrefix(runID string) string { return "ipcscript." + runID + "." }

// Remove unlinks the run's recorded message queues and removes the
// directory with everything in it. It is safe to call more than once.
func (d *RunDir) Remove() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := removeRun(d.dir, d.id)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// removeRun unlinks run id's queues (recorded, and any left in /dev/mqueue
// when it is mounted) and removes its directory.
func removeRun(dir, id string) error {
	var first error
	note := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	note(removeRecordedPaths(dir))
	for _, kname := range recordedMqueues(dir, id) {
		note(mqUnlink(kname))
	}
	if ents, err := os.ReadDir(mqueueDir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), mqueuePrefix(id)) && ownedByUs(filepath.Join(mqueueDir, e.Name())) {
				note(mqUnlink("/" + e.Name()))
			}
		}
	}
	note(os.RemoveAll(dir)) // RemoveAll never follows symlinks
	return first
}

// recordedMqueues reads the queue names dir records, keeping only names of
// run id (so a damaged file cannot make us unlink someone else's queue).
func recordedMqueues(dir, id string) []string {
	b, err := readNoFollow(dir, mqueuesFile, 1<<20)
	if err != nil {
		return nil
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "/"+mqueuePrefix(id)) && !strings.Contains(l[1:], "/") {
			names = append(names, l)
		}
	}
	return names
}

// CleanStale removes what runs that are gone left behind: /tmp/ipcscript-*
// directories whose owner file names a supervisor that is dead (or a pid
// now used by another process, told apart by its start time), with their
// recorded message queues and any /dev/mqueue/ipcscript.<runid>.* queue. It
// touches only what is provably ours: our naming pattern, a real directory
// (never a symlink) owned by our uid, an owner file naming our uid. It
// returns the directories it removed.
func CleanStale() ([]string, error) { return cleanStaleIn(runDirBase) }

func cleanStaleIn(base string) ([]string, error) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("clean stale runs: %w", err)
	}
	var removed []string
	var first error
	for _, e := range ents {
		if !isRunDirName(e.Name()) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		id := strings.TrimPrefix(e.Name(), runDirPrefix)
		if checkOurDir(dir) != nil {
			continue
		}
		o, err := readOwner(dir, id)
		if err != nil || o.uid != os.Getuid() || o.alive() {
			continue
		}
		if err := removeRun(dir, id); err != nil && first == nil {
			first = fmt.Errorf("clean stale run %s: %w", dir, err)
		}
		removed = append(removed, dir)
	}
	return removed, first
}

// checkOurDir checks that dir is a directory (not a symlink) owned by our uid.
func checkOurDir(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("not a directory")
	}
	if !ownedByUs(dir) {
		return fmt.Errorf("not owned by uid %d", os.Getuid())
	}
	return nil
}

func ownedByUs(path string) bool {
	var st unix.Stat_t
	return unix.Lstat(path, &st) == nil && int(st.Uid) == os.Getuid()
}

type runOwner struct {
	pid, uid int
	start    uint64
}

func readOwner(dir, id string) (runOwner, error) {
	b, err := readNoFollow(dir, ownerFile, 4096)
	if err != nil {
		return runOwner{}, err
	}
	var o runOwner
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Scan()
	if sc.Text() != "ipcscript run "+id {
		return o, fmt.Errorf("owner file does not name run %s", id)
	}
	seen := 0
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return o, fmt.Errorf("owner file: %q: %w", sc.Text(), err)
		}
		switch k {
		case "pid":
			o.pid = int(n)
		case "start":
			o.start = n
		case "uid":
			o.uid = int(n)
		default:
			continue
		}
		seen++
	}
	if seen != 3 || o.pid <= 0 {
		return o, fmt.Errorf("owner file incomplete")
	}
	return o, nil
}

// alive reports whether the run's supervisor still runs: the pid exists, is
// not a zombie, and started when the owner file says.
func (o runOwner) alive() bool {
	st, err := readProcStat(o.pid)
	if err != nil {
		return !os.IsNotExist(err) // unreadable: assume alive, touch nothing
	}
	return st.start == o.start && st.state != 'Z' && st.state != 'X'
}

// readNoFollow reads dir/name (at most max bytes) without following a
// symlink in either.
func readNoFollow(dir, name string, max int64) ([]byte, error) {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(dir, name), Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, name))
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", f.Name())
	}
	return io.ReadAll(io.LimitReader(f, max))
}

// procStat is what we use of /proc/PID/stat.
type procStat struct {
	state byte   // R, S, D, Z, X, ...
	start uint64 // start time in clock ticks after boot
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold anything,
	// spaces and ')' included: the fields after it follow the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	start, err := strconv.ParseUint(f[19], 10, 64) // field 22
	if err != nil || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return procStat{state: f[0][0], start: start}, nil
}

// RandomBytes fills b from the kernel's random source (getrandom(2)). It
// stands in for crypto/rand, whose package initialisation (the FIPS 140
// module: self-test state, SHA-2/3, AES-GCM, a DRBG and math/big) every
// process of a run would otherwise pay at start for 8-16 random bytes.
func RandomBytes(b []byte) error {
	for len(b) > 0 {
		n, err := unix.Getrandom(b, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("getrandom: %w", err)
		}
		b = b[n:]
	}
	return nil
}
