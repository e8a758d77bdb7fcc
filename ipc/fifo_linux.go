package ipc

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Fifo is a named pipe: a FIFO special file that processes with no common
// origin open by path. Bytes written by a writer are read by a reader, in
// order; the FIFO on disk holds nothing itself.
//
// Opening never hangs forever. POSIX open(2) of a FIFO blocks until the
// other end is opened too, and cannot be interrupted or given a timeout, so
// Open does it with O_NONBLOCK and waits itself, until o's deadline:
//
//   - "w": open(O_WRONLY|O_NONBLOCK) fails with ENXIO while there is no
//     reader; Open retries, sleeping 1 ms growing to 10 ms between tries.
//   - "r": open(O_RDONLY|O_NONBLOCK) succeeds at once, so Open then waits
//     until a writer has opened the FIFO, as a blocking open would: it
//     probes with a non-blocking read, which returns EAGAIN (or data, kept
//     for the first Read) once a writer is there and 0 while none is. A
//     writer that opened and closed again between two probes is noticed
//     through POLLHUP, which Linux reports only after a writer has come.
//
// So "open r" returns once a writer has the FIFO open (or has had it open),
// and its first Read never sees a spurious EOF from a writer that is yet
// to come. A NonBlocking open that finds no other end returns ErrTimeout at
// once. The stream returned is non-blocking on its own open file.
type Fifo struct {
	name, path string
	ws         *WaitStatus
	id         int32
}

// MakeFifo creates a FIFO at path, the one way every FIFO of a run is made:
// exclusively (it fails if anything exists at path, a symlink included:
// mknod does not follow a symlink in the last component) and mode 0600
// whatever the umask. The mode is set through a descriptor of the FIFO
// itself (O_PATH|O_NOFOLLOW), never by path, so a rename race cannot make
// it apply to anything else.
func MakeFifo(path string) error {
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return &os.PathError{Op: "mkfifo", Path: path, Err: err}
	}
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fmt.Errorf("%s was replaced while it was being created", path) // not ours to remove
	}
	if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), 0o600); err != nil {
		os.Remove(path)
		return &os.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

// NewFifo makes the FIFO name at path (MakeFifo) and returns it.
func NewFifo(name, path string) (*Fifo, error) {
	if err := MakeFifo(path); err != nil {
		return nil, fmt.Errorf("fifo %q: create: %w", name, err)
	}
	return FifoAt(name, path), nil
}

// FifoAt names an existing FIFO (a child gets the path from its parent).
func FifoAt(name, path string) *Fifo { return &Fifo{name: name, path: path, id: -1} }

// OpenFifo is FifoAt(name, path).Open(mode, o).
func OpenFifo(name, path, mode string, o WaitOpts) (*Stream, error) {
	return FifoAt(name, path).Open(mode, o)
}

// Name is the script's name; Path where the FIFO is.
func (f *Fifo) Name() string { return f.name }
func (f *Fifo) Path() string { return f.path }

// SetStatus makes Open record its wait in ws under the given object id.
func (f *Fifo) SetStatus(ws *WaitStatus, object int32) { f.ws, f.id = ws, object }

func (f *Fifo) errorf(op, format string, args ...any) error {
	return fmt.Errorf("fifo %q: %s: %s", f.name, op, fmt.Sprintf(format, args...))
}

// Open opens the FIFO for reading ("r") or writing ("w"), waiting for the
// other end as the type's comment says.
func (f *Fifo) Open(mode string, o WaitOpts) (*Stream, error) {
	var flags int
	switch mode {
	case "r":
		flags = unix.O_RDONLY
	case "w":
		flags = unix.O_WRONLY
	default:
		return nil, f.errorf("open", "mode %q must be \"r\" or \"w\"", mode)
	}
	flags |= unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOFOLLOW
	deadline := o.Deadline()
	entered := false
	defer func() {
		if entered {
			f.ws.Leave()
		}
	}()
	// wait sleeps before the next try, or says the wait is over.
	pause := time.Millisecond
	wait := func() error {
		if o.NonBlocking || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			return ErrTimeout
		}
		if !entered {
			entered = true
			f.ws.Enter(OpOpen, f.id, -1, !deadline.IsZero())
		}
		d := pause
		if !deadline.IsZero() {
			d = min(d, time.Until(deadline))
		}
		time.Sleep(d)
		pause = min(2*pause, 10*time.Millisecond)
		return nil
	}

	var fd int
	for {
		var err error
		fd, err = unix.Open(f.path, flags, 0)
		if err == nil {
			break
		}
		if err == unix.ENXIO && mode == "w" { // no reader yet
			if werr := wait(); werr != nil {
				return nil, werr
			}
			continue
		}
		if err == unix.ELOOP {
			return nil, f.errorf("open", "%s is a symlink; a FIFO is opened only by its real path", f.path)
		}
		return nil, f.errorf("open", "%v", &os.PathError{Op: "open", Path: f.path, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		unix.Close(fd)
		return nil, f.errorf("open", "%s is not a FIFO", f.path)
	}
	// A read end waits for a writer: while the descriptor is still
	// non-blocking, a read that says EOF means no writer is there (unless
	// one came and went: POLLHUP), EAGAIN that one is there with nothing
	// written yet. Bytes it reads become the Stream's first.
	var first []byte
	for mode == "r" {
		buf := make([]byte, streamBufSize)
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err == nil && n > 0 {
			first = buf[:n]
			break
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			unix.Close(fd)
			return nil, f.errorf("read", "%v", err)
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if k, _ := Poll(pfd, 0); k > 0 && pfd[0].Revents&unix.POLLHUP != 0 {
			break
		}
		if werr := wait(); werr != nil {
			unix.Close(fd)
			return nil, werr
		}
	}
	file, err := ownedFile(fd, f.path) // O_NONBLOCK was for open and the check above
	if err != nil {
		return nil, f.errorf("open", "%v", err)
	}
	s, err := newOwnedStream("fifo", f.name, file)
	if err != nil {
		return nil, err
	}
	s.SetStatus(f.ws, f.id)
	if first != nil {
		s.buf, s.w = first[:cap(first)], len(first)
	}
	return s, nil
}

// Remove unlinks the FIFO if path still is one; a FIFO already gone is not
// an error.
func (f *Fifo) Remove() error {
	var st unix.Stat_t
	if err := unix.Lstat(f.path, &st); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return f.errorf("remove", "%v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return f.errorf("remove", "%s is no longer a FIFO; left alone", f.path)
	}
	if err := unix.Unlink(f.path); err != nil && err != unix.ENOENT {
		return f.errorf("remove", "%v", err)
	}
	return nil
}
