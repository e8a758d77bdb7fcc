package ipc

import (
	"bytes"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// A pipe's write end sent over a SOCK_SEQPACKET pair arrives as a new,
// close-on-exec descriptor of the same pipe: bytes written through it are
// read from the read end kept here; a message longer than the buffer is
// cut, not lost.
func TestSendRecvFDs(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wfd, err := DupFD(w)
	if err != nil {
		t.Fatal(err)
	}
	if err := SendFDs(fds[0], []byte("take this"), []int{wfd}); err != nil {
		t.Fatal(err)
	}
	unix.Close(wfd)
	w.Close() // only the passed copy is left

	buf := make([]byte, 64)
	n, files, err := RecvFDs(fds[1], buf)
	if err != nil || string(buf[:n]) != "take this" || len(files) != 1 {
		t.Fatalf("got %q, %d files, %v", buf[:n], len(files), err)
	}
	flags, err := unix.FcntlInt(files[0].Fd(), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("received descriptor flags %#x (%v): want close-on-exec", flags, err)
	}
	if _, err := files[0].Write([]byte("through the passed end")); err != nil {
		t.Fatal(err)
	}
	files[0].Close()
	got, err := io.ReadAll(r) // EOF: the last write end is closed
	if err != nil || string(got) != "through the passed end" {
		t.Fatalf("read %q, %v", got, err)
	}

	long := bytes.Repeat([]byte("x"), 100)
	if err := SendFDs(fds[0], long, nil); err != nil {
		t.Fatal(err)
	}
	n, files, err = RecvFDs(fds[1], buf)
	if err != nil || n != len(buf) || len(files) != 0 {
		t.Fatalf("long message: n = %d, %d files, %v; want %d bytes", n, len(files), err, len(buf))
	}

	unix.Close(fds[0]) // EOF: n == 0
	fds[0] = -1
	if n, _, err := RecvFDs(fds[1], buf); n != 0 || err != nil {
		t.Fatalf("after close: n = %d, %v; want EOF", n, err)
	}
}
