package ipc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// Tests and benchmarks run between real processes: the test binary
// re-executes itself as a child with IPC_TEST_CHILD=<mode>, and TestMain
// runs the function registered for that mode instead of the tests. Test
// files register their modes from init():
//
//	func init() { registerChild("echo", childEcho) }
//
// A child gets its objects as inherited descriptors (childFile) and its
// arguments as os.Args[1:] (childArgs); it exits 0 when its function
// returns, and reports failure with childFatalf.

const childEnv = "IPC_TEST_CHILD"

var children = map[string]func(){}

// registerChild registers a child mode. It panics on a duplicate name.
func registerChild(name string, fn func()) {
	if _, dup := children[name]; dup {
		panic("ipc test: child mode " + name + " registered twice")
	}
	children[name] = fn
}

func TestMain(m *testing.M) {
	// A -race child that exits 0 would first sleep 1 s (GORACE
	// atexit_sleep_ms; see tests/main_test.go): children inherit this.
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	if mode := os.Getenv(childEnv); mode != "" {
		fn, ok := children[mode]
		if !ok {
			fmt.Fprintf(os.Stderr, "ipc test child: unknown mode %q\n", mode)
			os.Exit(2)
		}
		fn()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// childFile returns the i-th inherited descriptor (ExtraFiles[i], fd 3+i).
func childFile(i int) *os.File {
	return os.NewFile(uintptr(3+i), fmt.Sprintf("extra-file-%d", i))
}

// childArgs returns the arguments the parent passed to startChild.
func childArgs() []string { return os.Args[1:] }

// childFatalf reports a failure on stderr (the parent shows it) and exits 1.
func childFatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "child %s: %s\n", os.Getenv(childEnv), fmt.Sprintf(format, args...))
	os.Exit(1)
}

// testChild is a running child process.
type testChild struct {
	*exec.Cmd
	out  syncBuffer // its stdout and stderr
	done chan struct{}
	err  error // Wait's result, after done is closed
}

// startChild starts the test binary in child mode mode, with files as its
// descriptors 3, 4, ... and args as its arguments. The child dies with the
// test process (Pdeathsig) and is killed and reaped at cleanup.
func startChild(tb testing.TB, mode string, files []*os.File, args ...string) *testChild {
	tb.Helper()
	c := &testChild{Cmd: childCommand(mode, files, args...), done: make(chan struct{})}
	c.Stdout, c.Stderr = &c.out, &c.out
	if err := c.Start(); err != nil {
		tb.Fatalf("start child %s: %v", mode, err)
	}
	go func() {
		c.err = c.Cmd.Wait()
		close(c.done)
	}()
	tb.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.Process.Kill()
			<-c.done
		}
	})
	return c
}

// childCommand returns the command that runs child mode mode; the caller
// starts it and must reap it. (startChild does both.)
func childCommand(mode string, files []*os.File, args ...string) *exec.Cmd {
	c := exec.Command(os.Args[0], args...)
	c.Env = append(os.Environ(), childEnv+"="+mode)
	c.ExtraFiles = files
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return c
}

// wait waits for the child to exit and fails the test unless it exited 0.
func (c *testChild) wait(tb testing.TB) {
	tb.Helper()
	<-c.done
	if c.err != nil {
		tb.Errorf("child %v: %v\n%s", c.Args[1:], c.err, c.out.String())
	}
}

// kill SIGKILLs the child and reaps it.
func (c *testChild) kill() {
	c.Process.Kill()
	<-c.done
}

// syncBuffer is a bytes.Buffer safe for the writer goroutines of exec.Cmd
// and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
