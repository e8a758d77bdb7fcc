package ipc

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Poll is poll(2) over fds, retried on EINTR with the time that is left.
// timeout < 0 waits until a descriptor is ready, 0 only looks, > 0 waits
// at most that long. It returns how many descriptors have events (0 when
// the time ran out); every wait on descriptors in this package and in the
// bindings goes through it.
func Poll(fds []unix.PollFd, timeout time.Duration) (int, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		ms := -1
		if timeout >= 0 {
			ms = int((timeout + time.Millisecond - 1) / time.Millisecond) // never 0 for a real wait
		}
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			if timeout > 0 {
				timeout = max(0, time.Until(deadline))
			}
			continue
		}
		if err != nil {
			return 0, os.NewSyscallError("poll", err)
		}
		return n, nil
	}
}

// PollUntil is Poll with an absolute deadline (zero: none). It returns
// ErrTimeout when the deadline passed with nothing ready.
func PollUntil(fds []unix.PollFd, deadline time.Time) (int, error) {
	timeout := time.Duration(-1)
	if !deadline.IsZero() {
		timeout = max(0, time.Until(deadline))
	}
	n, err := Poll(fds, timeout)
	if err == nil && n == 0 && timeout >= 0 {
		return 0, ErrTimeout
	}
	return n, err
}

// PollFd waits until fd has one of events, as o says: NonBlocking only
// looks, a Timeout bounds the wait, neither waits until it is ready. It
// returns ErrTimeout when fd is not ready in time (with NonBlocking too;
// the caller names that "empty" or "full").
func PollFd(fd int, events int16, o WaitOpts) error {
	timeout := time.Duration(-1)
	switch {
	case o.NonBlocking:
		timeout = 0
	case o.Timeout > 0:
		timeout = o.Timeout
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	n, err := Poll(fds, timeout)
	if err == nil && n == 0 {
		return ErrTimeout
	}
	return err
}
