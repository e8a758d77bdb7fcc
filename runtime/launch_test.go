package runtime

import (
	"bytes"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// The control socket: the supervisor's end non-blocking (the netpoller
// reads it), the child's blocking, both close-on-exec.
func TestSocketPairEnds(t *testing.T) {
	parent, child, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	defer child.Close()
	for _, c := range []struct {
		name        string
		fd          int
		nonblocking bool
	}{{"supervisor's end", sysFd(t, parent), true}, {"child's end", sysFd(t, child), false}} {
		fl, err := unix.FcntlInt(uintptr(c.fd), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := fl&unix.O_NONBLOCK != 0; got != c.nonblocking {
			t.Errorf("%s: non-blocking %v, want %v", c.name, got, c.nonblocking)
		}
		fd, err := unix.FcntlInt(uintptr(c.fd), unix.F_GETFD, 0)
		if err != nil {
			t.Fatal(err)
		}
		if fd&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s: not close-on-exec", c.name)
		}
	}
	if _, err := child.Write([]byte("req x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := parent.Read(buf); err != nil || string(buf[:n]) != "req x" {
		t.Fatalf("the supervisor read %q, %v", buf[:n], err)
	}
}

// sysFd is f's descriptor, read without os.File.Fd (which makes a
// non-blocking file blocking).
func sysFd(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	rc.Control(func(u uintptr) { fd = int(u) })
	return fd
}

// An output that stays empty costs copyLines no allocation.
func TestCopyLinesOfAnEmptyOutputAllocatesNothing(t *testing.T) {
	var out bytes.Buffer
	lw := &lineWriter{w: &out}
	copyLines(lw, "[p] ", eofReader{}) // the pools filled
	if n := testing.AllocsPerRun(50, func() { copyLines(lw, "[p] ", eofReader{}) }); n != 0 {
		t.Errorf("%v allocations per empty output, want 0", n)
	}
	copyLines(lw, "[p] ", bytes.NewReader([]byte("a\nb")))
	if got := out.String(); got != "[p] a\n[p] b\n" {
		t.Errorf("copied %q", got)
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
