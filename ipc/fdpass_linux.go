package ipc

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Descriptor passing: a message on a unix socket can carry open
// descriptors (SCM_RIGHTS); the receiver gets new descriptors for the same
// open files, as if they had been dup'ed into it. The control socket
// between the supervisor and each child (a SOCK_SEQPACKET pair) uses these
// to hand over the inbox of a process spawned at run time and the
// descriptors scripts send in messages.

// MaxPassedFDs bounds the descriptors one message carries (the kernel's
// SCM_MAX_FD is 253).
const MaxPassedFDs = 64

// SendFDs sends b with descriptors fds attached on the unix socket fd
// (blocking), retrying on EINTR.
func SendFDs(fd int, b []byte, fds []int) error {
	if len(fds) > MaxPassedFDs {
		return fmt.Errorf("%d descriptors in one message, at most %d", len(fds), MaxPassedFDs)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for {
		err := unix.Sendmsg(fd, b, oob, nil, 0)
		if err != unix.EINTR {
			return os.NewSyscallError("sendmsg", err)
		}
	}
}

// RecvFDs receives one message into buf from the unix socket fd
// (blocking), with the descriptors it carries, close-on-exec; a longer
// message is cut to len(buf). n == 0 with a nil error is EOF on a
// SOCK_SEQPACKET socket.
func RecvFDs(fd int, buf []byte) (n int, files []*os.File, err error) {
	oob := make([]byte, unix.CmsgSpace(MaxPassedFDs*4))
	var oobn, flags int
	for {
		n, oobn, flags, _, err = unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, nil, os.NewSyscallError("recvmsg", err)
	}
	fds, perr := parseRights(oob[:oobn])
	for _, f := range fds {
		files = append(files, os.NewFile(uintptr(f), "passed"))
	}
	// A message longer than buf arrives cut to len(buf) (MSG_TRUNC), as
	// read(2) gives it; descriptors beyond MaxPassedFDs would be lost
	// (MSG_CTRUNC), which is an error.
	if perr == nil && flags&unix.MSG_CTRUNC != 0 {
		perr = fmt.Errorf("message carried more than %d descriptors", MaxPassedFDs)
	}
	if perr != nil {
		CloseFiles(files)
		return 0, nil, perr
	}
	return n, files, nil
}

// SendFDsConn and RecvFDsConn do the same on a non-blocking socket the Go
// runtime polls (the supervisor's ends of the control sockets): they wait
// for readiness instead of blocking a thread, and a Close of the file
// unblocks them.
func SendFDsConn(rc syscall.RawConn, b []byte, fds []int) error {
	var err error
	werr := rc.Write(func(fd uintptr) bool {
		err = SendFDs(int(fd), b, fds)
		return !isAgain(err)
	})
	if werr != nil {
		return werr
	}
	return err
}

// RecvFDsConn: see SendFDsConn.
func RecvFDsConn(rc syscall.RawConn, buf []byte) (n int, files []*os.File, err error) {
	rerr := rc.Read(func(fd uintptr) bool {
		n, files, err = RecvFDs(int(fd), buf)
		return !isAgain(err)
	})
	if rerr != nil {
		return 0, nil, rerr
	}
	return n, files, err
}

func isAgain(err error) bool {
	se, ok := err.(*os.SyscallError)
	return ok && se.Err == unix.EAGAIN
}

func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, os.NewSyscallError("parse control message", err)
	}
	var fds []int
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		r, err := unix.ParseUnixRights(&m)
		if err != nil {
			for _, f := range fds {
				unix.Close(f)
			}
			return nil, os.NewSyscallError("parse rights", err)
		}
		fds = append(fds, r...)
	}
	return fds, nil
}

// DupFD returns a close-on-exec duplicate of f's descriptor, without
// changing f's blocking mode (as f.Fd() would).
func DupFD(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	cerr := rc.Control(func(fd uintptr) {
		nfd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if cerr != nil {
		return -1, cerr
	}
	if err != nil {
		return -1, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
	}
	return nfd, nil
}

// CloseFiles closes every file of fs.
func CloseFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
