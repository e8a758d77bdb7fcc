package ipc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	registerChild("kern-fifo-writer", kernChildFifoWriter)
	registerChild("kern-pipe-reader", kernChildPipeReader)
}

// TestFifoLinesBetweenProcesses: a FIFO in the run directory carries 200
// lines from one process to another, and is a FIFO on disk while open.
func TestFifoLinesBetweenProcesses(t *testing.T) {
	rd := newTestRunDir(t)
	path, _ := rd.Path("jobs")
	ff, err := NewFifo("jobs", path)
	if err != nil {
		t.Fatal(err)
	}
	c := startChild(t, "kern-fifo-writer", nil, path, "200")
	s, err := ff.Open("r", WaitOpts{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("%v\n%s", err, c.out.String())
	}
	defer s.Close()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO || st.Mode&0o777 != 0o600 {
		t.Fatalf("%s: mode %o, %v", path, st.Mode, err)
	}
	for i := 0; i < 200; i++ {
		line, err := s.ReadLine(WaitOpts{Timeout: 20 * time.Second})
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if want := fmt.Sprintf("line %d of 200", i); string(line) != want {
			t.Fatalf("got %q, want %q", line, want)
		}
	}
	if _, err := s.ReadLine(WaitOpts{Timeout: 20 * time.Second}); err != ErrEOF {
		t.Fatalf("after the last line: %v, want ErrEOF", err)
	}
	c.wait(t)
	if err := ff.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("FIFO still there: %v", err)
	}
}

func kernChildFifoWriter() {
	path, n := childArgs()[0], childArgs()[1]
	count, _ := strconv.Atoi(n)
	s, err := OpenFifo("jobs", path, "w", WaitOpts{Timeout: 20 * time.Second})
	if err != nil {
		childFatalf("%v", err)
	}
	for i := 0; i < count; i++ {
		if _, err := s.WriteString(fmt.Sprintf("line %d of %d\n", i, count), WaitOpts{}); err != nil {
			childFatalf("%v", err)
		}
	}
	s.Close()
}

// TestFifoOpenWaitsAndTimesOut: neither end's open hangs forever when the
// other never comes.
func TestFifoOpenWaitsAndTimesOut(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	ff, err := NewFifo("f", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"r", "w"} {
		if _, err := ff.Open(mode, WaitOpts{Timeout: 30 * time.Millisecond}); err != ErrTimeout {
			t.Errorf("open %s with no peer: %v, want ErrTimeout", mode, err)
		}
		if _, err := ff.Open(mode, WaitOpts{NonBlocking: true}); err != ErrTimeout {
			t.Errorf("open %s non-blocking with no peer: %v, want ErrTimeout", mode, err)
		}
	}
	_, err = ff.Open("rw", WaitOpts{})
	wantErr(t, err, `fifo "f": open: mode "rw" must be "r" or "w"`)

	// Both ends opened at once find each other, whichever comes first.
	for _, first := range []string{"r", "w"} {
		var wg sync.WaitGroup
		var r, w *Stream
		var rerr, werr error
		wg.Add(2)
		go func() { defer wg.Done(); r, rerr = ff.Open("r", WaitOpts{Timeout: 20 * time.Second}) }()
		if first == "r" {
			time.Sleep(10 * time.Millisecond)
		}
		go func() { defer wg.Done(); w, werr = ff.Open("w", WaitOpts{Timeout: 20 * time.Second}) }()
		wg.Wait()
		if rerr != nil || werr != nil {
			t.Fatalf("%v %v", rerr, werr)
		}
		w.WriteString("hello", WaitOpts{})
		w.Close()
		if b, err := r.ReadAll(WaitOpts{Timeout: 20 * time.Second}); err != nil || string(b) != "hello" {
			t.Fatalf("read %q %v", b, err)
		}
		r.Close()
	}
}

// TestFifoWriterCameAndWent: a writer that opened, wrote and closed before
// the reader opened (another reader held the FIFO open meanwhile) is not
// missed: the reader gets its bytes, then EOF.
func TestFifoWriterCameAndWent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := MakeFifo(path); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	w, err := OpenFifo("f", path, "w", WaitOpts{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("bye\n", WaitOpts{})
	w.Close()
	r, err := OpenFifo("f", path, "r", WaitOpts{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if line, err := r.ReadLine(WaitOpts{Timeout: 20 * time.Second}); err != nil || string(line) != "bye" {
		t.Fatalf("%q %v", line, err)
	}
	if _, err := r.ReadLine(WaitOpts{Timeout: 20 * time.Second}); err != ErrEOF {
		t.Fatalf("after the writer left: %v", err)
	}
}

func TestMakeFifoExclusiveNoSymlinks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := MakeFifo(path); err != nil {
		t.Fatal(err)
	}
	wantErr(t, MakeFifo(path), "mkfifo "+path, "file exists")
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	wantErr(t, MakeFifo(link), "file exists")
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatal("MakeFifo followed a dangling symlink")
	}
	os.Symlink(path, filepath.Join(dir, "link2"))
	_, err := OpenFifo("f", filepath.Join(dir, "link2"), "w", WaitOpts{NonBlocking: true})
	wantErr(t, err, `fifo "f": open:`, "is a symlink")
	reg := filepath.Join(dir, "regular")
	os.WriteFile(reg, nil, 0o600)
	_, err = OpenFifo("f", reg, "r", WaitOpts{NonBlocking: true})
	wantErr(t, err, "is not a FIFO")
	wantErr(t, FifoAt("f", reg).Remove(), "is no longer a FIFO")
}

// pipeStreams returns the two ends of a new pipe as Streams; the read end
// is closed when the test ends (closing the write end is the test's).
func pipeStreams(t *testing.T) (r, w *Stream) {
	t.Helper()
	rf, wf, err := NewPipe()
	if err != nil {
		t.Fatal(err)
	}
	if r, err = NewStream("pipe", "p", rf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if w, err = NewStream("pipe", "p", wf); err != nil {
		t.Fatal(err)
	}
	return r, w
}

// TestPipeStream covers the Stream operations over a pipe.
func TestPipeStream(t *testing.T) {
	r, w := pipeStreams(t)
	if _, err := r.Read(1, WaitOpts{NonBlocking: true}); err != ErrEmpty {
		t.Fatalf("non-blocking read of an empty pipe: %v", err)
	}
	if _, err := r.ReadLine(WaitOpts{Timeout: 20 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("read with a timeout: %v", err)
	}
	w.WriteString("one\ntwo\nthree", WaitOpts{})
	for _, want := range []string{"one", "tw"} {
		var got []byte
		var err error
		if want == "one" {
			got, err = r.ReadLine(WaitOpts{})
		} else {
			got, err = r.Read(2, WaitOpts{})
		}
		if err != nil || string(got) != want {
			t.Fatalf("got %q %v, want %q", got, err, want)
		}
	}
	if r.Buffered() != len("o\nthree") {
		t.Fatalf("Buffered = %d", r.Buffered())
	}
	// A partial line waits; the timeout leaves it buffered.
	if line, err := r.ReadLine(WaitOpts{}); err != nil || string(line) != "o" {
		t.Fatalf("%q %v", line, err)
	}
	if _, err := r.ReadLine(WaitOpts{Timeout: 10 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("partial line: %v", err)
	}
	w.WriteString("!\n", WaitOpts{})
	if line, _ := r.ReadLine(WaitOpts{}); string(line) != "three!" {
		t.Fatalf("line %q", line)
	}
	// Large reads go straight into the caller's slice.
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000)
	go func() { w.Write(big, WaitOpts{}); w.WriteString("tail", WaitOpts{}); w.Close() }()
	got, err := r.Read(len(big), WaitOpts{Timeout: 20 * time.Second})
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("big read: %d bytes, %v", len(got), err)
	}
	if rest, err := r.Read(100, WaitOpts{}); err != nil || string(rest) != "tail" {
		t.Fatalf("short read at the end: %q %v", rest, err)
	}
	if _, err := r.Read(1, WaitOpts{}); err != ErrEOF {
		t.Fatalf("read at the end: %v", err)
	}
	if b, err := r.ReadAll(WaitOpts{}); err != nil || len(b) != 0 {
		t.Fatalf("ReadAll at the end: %q %v", b, err)
	}
}

// TestPipeBrokenAndClosed: writing to a pipe nobody reads is an error that
// says so and wraps ErrClosed; a closed stream says it is closed.
func TestPipeBrokenAndClosed(t *testing.T) {
	rf, wf, _ := NewPipe()
	r, _ := NewStream("pipe", "p", rf)
	w, _ := NewStream("pipe", "p", wf)
	r.Close()
	_, err := w.WriteString("x", WaitOpts{})
	wantErr(t, err, `pipe "p": write: broken pipe`)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("%v does not wrap ErrClosed", err)
	}
	w.Close()
	_, err = w.WriteString("x", WaitOpts{})
	wantErr(t, err, `pipe "p": write: pipe is closed`)
	_, err = r.Read(1, WaitOpts{})
	wantErr(t, err, `pipe "p": read: pipe is closed`)

	// A full pipe: non-blocking writes say ErrFull, timed ones ErrTimeout.
	rf, wf, _ = NewPipe()
	r, _ = NewStream("pipe", "q", rf)
	w, _ = NewStream("pipe", "q", wf)
	defer r.Close()
	defer w.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := w.Write(chunk, WaitOpts{NonBlocking: true}); err == ErrFull {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Write(chunk, WaitOpts{Timeout: 20 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("write to a full pipe with a timeout: %v", err)
	}
}

// TestStreamOverNonBlockingFile: a descriptor that arrives non-blocking
// (its open file is shared, and another holder set O_NONBLOCK) is left so;
// a read that finds nothing waits in poll and gets the bytes when they
// come, and a blocking write goes whole.
func TestStreamOverNonBlockingFile(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	r, _ := NewStream("pipe", "p", os.NewFile(uintptr(p[0]), "|0"))
	w, _ := NewStream("pipe", "p", os.NewFile(uintptr(p[1]), "|1"))
	defer r.Close()
	defer w.Close()
	big := bytes.Repeat([]byte("x"), 1<<20) // more than the pipe holds
	done := make(chan error, 1)
	go func() {
		_, err := w.Write(big, WaitOpts{})
		done <- err
	}()
	got, err := r.Read(len(big), WaitOpts{})
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if flags, _ := unix.FcntlInt(uintptr(p[0]), unix.F_GETFL, 0); flags&unix.O_NONBLOCK == 0 {
		t.Fatal("the Stream changed the shared open file's flags")
	}
}

// TestPipeToChildKeepsOthersBlocking: a pipe made by os.Pipe and handed to a
// child arrives in blocking mode; the child's Stream reads it with timeouts
// without changing the shared open file's flags (an exec'd program's stdin,
// say, stays blocking).
func TestPipeToChildKeepsOthersBlocking(t *testing.T) {
	rf, wf, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	c := startChild(t, "kern-pipe-reader", []*os.File{rf})
	rf.Close()
	for i := 0; i < 3; i++ {
		fmt.Fprintf(wf, "line %d\n", i)
	}
	wf.Close()
	c.wait(t)
	if !strings.Contains(c.out.String(), "shared open file still blocking") {
		t.Fatalf("child said %q", c.out.String())
	}
}

func kernChildPipeReader() {
	f := childFile(0)
	rc, _ := f.SyscallConn()
	var fd2 int
	rc.Control(func(fd uintptr) { fd2, _ = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
	s, err := NewStream("pipe", "p", f)
	if err != nil {
		childFatalf("%v", err)
	}
	for i := 0; i < 3; i++ {
		line, err := s.ReadLine(WaitOpts{Timeout: 20 * time.Second})
		if err != nil || string(line) != fmt.Sprintf("line %d", i) {
			childFatalf("line %d: %q %v", i, line, err)
		}
	}
	if _, err := s.ReadLine(WaitOpts{Timeout: 20 * time.Second}); err != ErrEOF {
		childFatalf("at the end: %v", err)
	}
	flags, _ := unix.FcntlInt(uintptr(fd2), unix.F_GETFL, 0)
	if flags&unix.O_NONBLOCK == 0 {
		fmt.Println("shared open file still blocking")
	}
}

// TestMakeFifoMode0600 checks the one mode policy: 0600 whatever the umask
// (a umask that takes the owner's write bit would otherwise leave a FIFO
// its own run cannot open for writing).
func TestMakeFifoMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	old := syscall.Umask(0o277)
	err := MakeFifo(path)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeNamedPipe == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want a named pipe with 0600", st.Mode())
	}
}
