package ipc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	registerChild("kern-mq-send", kernChildMqSend)
	registerChild("kern-mq-echo", kernChildMqEcho)
}

const mqueueFSMagic = 0x19800202

var mountMqueueOnce sync.Once

// mountMqueueFS makes sure the mqueue file system is mounted on /dev/mqueue
// (where most distributions mount it at boot), so that a test can see the
// queues that exist; it skips the test where it cannot mount it. The mount
// is left in place, as a distribution would have it.
func mountMqueueFS(tb testing.TB) {
	tb.Helper()
	mountMqueueOnce.Do(func() {
		var st unix.Statfs_t
		if unix.Statfs(mqueueDir, &st) == nil && st.Type == mqueueFSMagic {
			return
		}
		os.MkdirAll(mqueueDir, 0o755)
		unix.Mount("none", mqueueDir, "mqueue", 0, "")
	})
	var st unix.Statfs_t
	if err := unix.Statfs(mqueueDir, &st); err != nil || st.Type != mqueueFSMagic {
		tb.Skipf("cannot mount the mqueue file system on %s (%v)", mqueueDir, err)
	}
}

// newTestMqueue creates a queue named in a test run directory; the run
// directory's cleanup unlinks it and checks it is gone.
func newTestMqueue(tb testing.TB, rd *RunDir, name string, capacity, msgsize int) *Mqueue {
	tb.Helper()
	kname, err := rd.MqueueName(name)
	if err != nil {
		tb.Fatal(err)
	}
	q, err := NewMqueue(name, kname, capacity, msgsize)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { q.Close() })
	return q
}

// mqProbe opens kname read-only and closes it again, returning the errno.
func mqProbe(kname string) error {
	p, _ := unix.BytePtrFromString(strings.TrimPrefix(kname, "/"))
	fd, _, e := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(p)), unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	unix.Close(int(fd))
	return nil
}

// TestMqueuePriorities: messages sent by another process come out highest
// priority first, in order within a priority.
func TestMqueuePriorities(t *testing.T) {
	mountMqueueFS(t)
	rd := newTestRunDir(t)
	q := newTestMqueue(t, rd, "orders", 10, 64)
	if q.Capacity() != 10 || q.MsgSize() != 64 {
		t.Fatalf("attributes %d %d", q.Capacity(), q.MsgSize())
	}
	st, err := os.Lstat(filepath.Join(mqueueDir, strings.TrimPrefix(q.KernelName(), "/")))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("queue in %s: %v %v", mqueueDir, st, err)
	}
	c := startChild(t, "kern-mq-send", []*os.File{q.File()}, "1:low", "5:urgent-a", "3:mid", "5:urgent-b", "0:lowest")
	c.wait(t)
	if q.Len() != 5 {
		t.Fatalf("Len = %d", q.Len())
	}
	want := []string{"5:urgent-a", "5:urgent-b", "3:mid", "1:low", "0:lowest"}
	for _, w := range want {
		b, prio, err := q.Receive(WaitOpts{Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%d:%s", prio, b); got != w {
			t.Fatalf("received %s, want %s", got, w)
		}
	}
	if _, _, err := q.Receive(WaitOpts{NonBlocking: true}); err != ErrEmpty {
		t.Fatalf("receive from an empty queue, non-blocking: %v", err)
	}
	if _, _, err := q.Receive(WaitOpts{Timeout: 20 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("receive from an empty queue with a timeout: %v", err)
	}
	if err := q.Unlink(); err != nil {
		t.Fatal(err)
	}
	if err := mqProbe(q.KernelName()); err != unix.ENOENT {
		t.Fatalf("queue still there after Unlink: %v", err)
	}
	// The queue itself lives on through the descriptor.
	if err := q.Send([]byte("still here"), 0, WaitOpts{}); err != nil {
		t.Fatal(err)
	}
	if err := q.Unlink(); err != nil {
		t.Fatalf("second Unlink: %v", err)
	}
}

func kernChildMqSend() {
	q, err := OpenMqueue(childFile(0), "orders", "")
	if err != nil {
		childFatalf("%v", err)
	}
	for _, a := range childArgs() {
		p, _, _ := strings.Cut(a, ":")
		prio, _ := strconv.Atoi(p)
		if err := q.Send([]byte(a[len(p)+1:]), uint(prio), WaitOpts{Timeout: 10 * time.Second}); err != nil {
			childFatalf("%v", err)
		}
	}
}

func TestMqueueErrors(t *testing.T) {
	rd := newTestRunDir(t)
	q := newTestMqueue(t, rd, "orders", 2, 8192)
	wantErr(t, q.Send(make([]byte, 9000), 0, WaitOpts{}), `mqueue "orders": send: message of 9000 bytes exceeds msgsize 8192`)
	wantErr(t, q.Send(nil, MqPrioMax, WaitOpts{}), `mqueue "orders": send: priority 32768 exceeds the maximum 32767`)
	for i := 0; i < 2; i++ {
		if err := q.Send(nil, 0, WaitOpts{NonBlocking: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Send(nil, 0, WaitOpts{NonBlocking: true}); err != ErrFull {
		t.Fatalf("send to a full queue, non-blocking: %v", err)
	}
	if err := q.Send(nil, 0, WaitOpts{Timeout: 20 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("send to a full queue with a timeout: %v", err)
	}
	if b, _, err := q.Receive(WaitOpts{}); err != nil || len(b) != 0 {
		t.Fatalf("empty message: %q %v", b, err)
	}

	_, err := NewMqueue("orders", q.KernelName(), 2, 16)
	wantErr(t, err, `mqueue "orders": create `+q.KernelName()+`: a queue of that name already exists`)
	_, err = NewMqueue("orders", "no-slash", 2, 16)
	wantErr(t, err, "must be '/'")

	msgMax, _ := strconv.Atoi(readProcLimit("msg_max"))
	sizeMax, _ := strconv.Atoi(readProcLimit("msgsize_max"))
	wantErr(t, CheckMqueueLimits("orders", msgMax+1, 16),
		fmt.Sprintf(`mqueue "orders": capacity %d exceeds /proc/sys/fs/mqueue/msg_max = %d`, msgMax+1, msgMax))
	wantErr(t, CheckMqueueLimits("orders", 1, sizeMax+1),
		fmt.Sprintf(`mqueue "orders": msgsize %d exceeds /proc/sys/fs/mqueue/msgsize_max = %d`, sizeMax+1, sizeMax))
	wantErr(t, CheckMqueueLimits("orders", 0, 16), "capacity 0 must be at least 1")
	if err := CheckMqueueLimits("orders", msgMax, sizeMax); err != nil {
		t.Fatalf("the largest queue the limits allow: %v", err)
	}
	// NewMqueue checks the limits first, whoever runs it.
	k, _ := rd.MqueueName("big")
	_, err = NewMqueue("big", k, msgMax+1, 16)
	wantErr(t, err, "exceeds /proc/sys/fs/mqueue/msg_max")

	f, _ := os.Open("/dev/null")
	_, err = OpenMqueue(f, "orders", "")
	wantErr(t, err, `mqueue "orders": open: descriptor /dev/null is not a message queue`)
	f.Close()
}

// TestMqueueAnonymous: a queue unlinked at once still carries messages
// between processes through the inherited descriptor, and select can poll
// it.
func TestMqueueAnonymous(t *testing.T) {
	rd := newTestRunDir(t)
	req := newTestMqueue(t, rd, "req", 4, 128)
	resp := newTestMqueue(t, rd, "resp", 4, 128)
	req.Unlink()
	resp.Unlink()
	c := startChild(t, "kern-mq-echo", []*os.File{req.File(), resp.File()}, "3")
	pfd := []unix.PollFd{{Fd: int32(resp.Fd()), Events: unix.POLLIN}}
	for i := 0; i < 3; i++ {
		msg := fmt.Sprintf("hello %d", i)
		if err := req.Send([]byte(msg), 1, WaitOpts{Timeout: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
		if n, err := unix.Poll(pfd, 10000); n != 1 || err != nil || pfd[0].Revents&unix.POLLIN == 0 {
			t.Fatalf("poll: %d %v %#x", n, err, pfd[0].Revents)
		}
		b, _, err := resp.Receive(WaitOpts{NonBlocking: true})
		if err != nil || string(b) != msg {
			t.Fatalf("echo %q %v", b, err)
		}
	}
	c.wait(t)
}

func kernChildMqEcho() {
	req, err := OpenMqueue(childFile(0), "req", "")
	if err != nil {
		childFatalf("%v", err)
	}
	resp, err := OpenMqueue(childFile(1), "resp", "")
	if err != nil {
		childFatalf("%v", err)
	}
	n, _ := strconv.Atoi(childArgs()[0])
	for i := 0; i < n; i++ {
		b, prio, err := req.Receive(WaitOpts{Timeout: 30 * time.Second})
		if err != nil {
			childFatalf("receive %d: %v", i, err)
		}
		if err := resp.Send(b, prio, WaitOpts{Timeout: 30 * time.Second}); err != nil {
			childFatalf("send %d: %v", i, err)
		}
	}
}

func TestMqueueWaitRecorded(t *testing.T) {
	st, err := NewStatusTable(1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Region.Close()
	ws := st.Slot(0)
	rd := newTestRunDir(t)
	q := newTestMqueue(t, rd, "q", 1, 16)
	q.SetStatus(ws, 9)
	done := make(chan error)
	go func() {
		_, _, err := q.Receive(WaitOpts{Timeout: 20 * time.Second})
		done <- err
	}()
	waitFor(t, "the receive to be recorded", func() bool {
		return atomic.LoadUint32(&ws.State) == StateBlocked && atomic.LoadUint32(&ws.Op) == OpReceive &&
			atomic.LoadInt32(&ws.Object) == 9 && atomic.LoadUint32(&ws.Deadline) == 1
	})
	q.Send([]byte("x"), 0, WaitOpts{})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if atomic.LoadUint32(&ws.State) != StateRunning || atomic.LoadUint64(&ws.Progress) != 2 {
		t.Fatalf("state %d progress %d", ws.State, ws.Progress)
	}
}
