package ipc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mqueue is a POSIX message queue (mq_overview(7)): a kernel object holding
// up to capacity messages of at most msgsize bytes each, received highest
// priority first (FIFO within a priority). It is reached through raw system
// calls, no cgo.
//
// A queue has a kernel name ("/ipcscript.<runid>.<name>", see
// RunDir.MqueueName) so that other programs can open it and a later run can
// remove it if this one is killed. A queue nobody outside the run needs can
// be unlinked right after NewMqueue: processes of the run reach it through
// the inherited descriptor, and nothing is left in the kernel's name space.
//
// Waiting. The descriptor stays in blocking mode; a wait is one
// mq_timedsend / mq_timedreceive with the deadline as its absolute timeout,
// and a non-blocking try is the same call with a timeout already past (the
// kernel then returns at once), so no open-file flag is ever flipped under
// the other processes sharing the descriptor. A blocked call holds an OS
// thread, as any blocking system call does in Go.
//
// The descriptor is pollable (POLLIN: a message is queued; POLLOUT: there is
// room), so select can wait on Fd() with poll(2); another process may take
// the message first, so follow a wakeup with a NonBlocking Receive.
type Mqueue struct {
	name, kname string
	f           *os.File
	rc          syscall.RawConn
	fd          int
	capacity    int
	msgsize     int
	bufs        sync.Pool // receive buffers of msgsize bytes
	closed      atomic.Bool
	ws          *WaitStatus
	id          int32
}

// mqAttr is the kernel's struct mq_attr.
type mqAttr struct {
	flags, maxmsg, msgsize, curmsgs int64
	_                               [4]int64
}

const (
	// MqPrioMax bounds priorities: 0 <= prio < MqPrioMax (MQ_PRIO_MAX).
	MqPrioMax = 32768
	// mqMsgOverhead is what the kernel charges per message against
	// RLIMIT_MSGQUEUE on top of its bytes (struct msg_msg and
	// posix_msg_tree_node on 64-bit Linux), for the limit check's message.
	mqMsgOverhead = 96
	mqProcDir     = "/proc/sys/fs/mqueue/"
)

// NewMqueue creates the queue kname (which must start with '/' and hold no
// other '/') exclusively, mode 0600, close-on-exec, for capacity messages of
// at most msgsize bytes. name is the script's name for it, used in errors.
// The kernel limits are checked first (CheckMqueueLimits) so that a queue
// too big for them fails with a message that says which limit.
func NewMqueue(name, kname string, capacity, msgsize int) (*Mqueue, error) {
	if err := checkMqueueName(name, kname); err != nil {
		return nil, err
	}
	if err := CheckMqueueLimits(name, capacity, msgsize); err != nil {
		return nil, err
	}
	p, err := unix.BytePtrFromString(kname[1:])
	if err != nil {
		return nil, fmt.Errorf("mqueue %q: create: %w", name, err)
	}
	attr := mqAttr{maxmsg: int64(capacity), msgsize: int64(msgsize)}
	fd, _, e := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(p)),
		uintptr(unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC), 0o600, uintptr(unsafe.Pointer(&attr)), 0, 0)
	if e != 0 {
		return nil, fmt.Errorf("mqueue %q: create %s: %s", name, kname, explainMqOpen(e, capacity, msgsize))
	}
	q, err := newMqueue(name, kname, os.NewFile(fd, "mqueue:"+kname))
	if err != nil {
		mqUnlink(kname)
	}
	return q, err
}

func checkMqueueName(name, kname string) error {
	if len(kname) < 2 || kname[0] != '/' || strings.ContainsAny(kname[1:], "/\x00") || len(kname) > 255 {
		return fmt.Errorf("mqueue %q: kernel name %q must be '/' and 1 to 254 bytes without '/'", name, kname)
	}
	return nil
}

func explainMqOpen(e syscall.Errno, capacity, msgsize int) string {
	switch e {
	case unix.EEXIST:
		return "a queue of that name already exists"
	case unix.ENOSPC:
		return "the system-wide number of queues is exhausted (" + mqProcDir + "queues_max = " + readProcLimit("queues_max") + ")"
	case unix.EMFILE:
		var rl unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_MSGQUEUE, &rl)
		return fmt.Sprintf("too many open descriptors, or this user's queues would exceed RLIMIT_MSGQUEUE = %d bytes (ulimit -q; this queue needs about %d)",
			rl.Cur, capacity*(msgsize+mqMsgOverhead))
	case unix.ENOSYS:
		return "this kernel has no POSIX message queues (CONFIG_POSIX_MQUEUE)"
	}
	return e.Error()
}

// OpenMqueue wraps an inherited queue descriptor. The Mqueue owns f from
// then on; kname may be "" for a queue that was unlinked.
func OpenMqueue(f *os.File, name, kname string) (*Mqueue, error) {
	if f == nil {
		return nil, fmt.Errorf("mqueue %q: open: no descriptor", name)
	}
	return newMqueue(name, kname, f)
}

func newMqueue(name, kname string, f *os.File) (*Mqueue, error) {
	q := &Mqueue{name: name, kname: kname, f: f, id: -1}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, q.errorf("open", "%v", err)
	}
	q.rc = rc
	rc.Control(func(fd uintptr) { q.fd = int(fd) })
	a, err := q.attr()
	if err != nil {
		return nil, q.errorf("open", "descriptor %s is not a message queue: %v", f.Name(), err)
	}
	q.capacity, q.msgsize = int(a.maxmsg), int(a.msgsize)
	q.bufs.New = func() any { b := make([]byte, q.msgsize); return &b }
	return q, nil
}

func (q *Mqueue) attr() (mqAttr, error) {
	var a mqAttr
	var e syscall.Errno
	err := q.rc.Control(func(fd uintptr) {
		_, _, e = unix.Syscall(unix.SYS_MQ_GETSETATTR, fd, 0, uintptr(unsafe.Pointer(&a)))
	})
	if err != nil {
		return a, err
	}
	if e != 0 {
		return a, e
	}
	return a, nil
}

func (q *Mqueue) errorf(op, format string, args ...any) error {
	return fmt.Errorf("mqueue %q: %s: %s", q.name, op, fmt.Sprintf(format, args...))
}

func (q *Mqueue) closedError(op string, err error) error {
	if q.closed.Load() || errors.Is(err, os.ErrClosed) {
		return q.errorf(op, "mqueue is closed")
	}
	return q.errorf(op, "%v", err)
}

// SetStatus makes the queue record its blocking waits in ws under the given
// object id (nil: don't record). Call it before using the queue.
func (q *Mqueue) SetStatus(ws *WaitStatus, object int32) { q.ws, q.id = ws, object }

// Name is the script's name; KernelName the queue's name in the kernel.
func (q *Mqueue) Name() string       { return q.name }
func (q *Mqueue) KernelName() string { return q.kname }

// Capacity and MsgSize are the queue's attributes as the kernel has them.
func (q *Mqueue) Capacity() int { return q.capacity }
func (q *Mqueue) MsgSize() int  { return q.msgsize }

// Len is the number of messages queued now.
func (q *Mqueue) Len() int {
	a, err := q.attr()
	if err != nil {
		return 0
	}
	return int(a.curmsgs)
}

// File is the descriptor to hand to a child through ExtraFiles.
func (q *Mqueue) File() *os.File { return q.f }

// Fd is the descriptor number, for poll(2).
func (q *Mqueue) Fd() int { return q.fd }

// Send queues b with priority prio (0 <= prio < MqPrioMax), waiting for room
// while the queue is full: ErrFull at once with NonBlocking, ErrTimeout when
// o.Timeout passes first.
func (q *Mqueue) Send(b []byte, prio uint, o WaitOpts) error {
	if len(b) > q.msgsize {
		return q.errorf("send", "message of %d bytes exceeds msgsize %d", len(b), q.msgsize)
	}
	if prio >= MqPrioMax {
		return q.errorf("send", "priority %d exceeds the maximum %d", prio, MqPrioMax-1)
	}
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	call := func(fd uintptr, ts *unix.Timespec) syscall.Errno {
		_, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDSEND, fd, uintptr(p), uintptr(len(b)), uintptr(prio), uintptr(unsafe.Pointer(ts)), 0)
		return e
	}
	if err := q.wait("send", OpSend, unix.POLLOUT, o, ErrFull, call); err != nil {
		return err
	}
	q.ws.Done()
	return nil
}

// Receive takes the oldest message of the highest priority, waiting while
// the queue is empty: ErrEmpty at once with NonBlocking, ErrTimeout when
// o.Timeout passes first. The returned slice is the caller's.
func (q *Mqueue) Receive(o WaitOpts) ([]byte, uint, error) {
	bp := q.bufs.Get().(*[]byte)
	defer q.bufs.Put(bp)
	buf := *bp
	var n uintptr
	var prio uint32
	call := func(fd uintptr, ts *unix.Timespec) syscall.Errno {
		var e syscall.Errno
		n, _, e = unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			uintptr(unsafe.Pointer(&prio)), uintptr(unsafe.Pointer(ts)), 0)
		return e
	}
	if err := q.wait("receive", OpReceive, unix.POLLIN, o, ErrEmpty, call); err != nil {
		return nil, 0, err
	}
	q.ws.Done()
	out := make([]byte, n)
	copy(out, buf[:n])
	return out, uint(prio), nil
}

// pastTimeout is an absolute timeout long gone: a timed call with it never
// sleeps.
var pastTimeout = unix.Timespec{}

// wait runs call (one mq_timed* system call) first as a try, then, unless
// o says not to wait, as a wait until o's deadline, recording the wait in
// the status slot. busy is the outcome of a try that would have waited.
func (q *Mqueue) wait(op string, statusOp uint32, events int16, o WaitOpts, busy error, call func(fd uintptr, ts *unix.Timespec) syscall.Errno) error {
	var e syscall.Errno
	do := func(ts *unix.Timespec) error {
		return q.rc.Control(func(fd uintptr) {
			for e = call(fd, ts); e == unix.EINTR; e = call(fd, ts) {
			}
		})
	}
	if err := do(&pastTimeout); err != nil {
		return q.closedError(op, err)
	}
	if e == unix.ETIMEDOUT || e == unix.EAGAIN {
		if o.NonBlocking {
			return busy
		}
		deadline := o.Deadline()
		q.ws.Enter(statusOp, q.id, -1, !deadline.IsZero())
		defer q.ws.Leave()
		for {
			var ts *unix.Timespec
			if !deadline.IsZero() {
				t := unix.NsecToTimespec(deadline.UnixNano()) // CLOCK_REALTIME, as the kernel wants
				ts = &t
			}
			if err := do(ts); err != nil {
				return q.closedError(op, err)
			}
			if e != unix.EAGAIN {
				break
			}
			// Someone set O_NONBLOCK on the shared open file: wait with poll.
			if err := q.pollWait(events, deadline); err != nil {
				return err
			}
		}
	}
	switch e {
	case 0:
		return nil
	case unix.ETIMEDOUT:
		return ErrTimeout
	case unix.EBADF:
		return q.errorf(op, "descriptor not open for %s", op)
	}
	return q.errorf(op, "%v", e)
}

func (q *Mqueue) pollWait(events int16, deadline time.Time) error {
	var err error
	cerr := q.rc.Control(func(fd uintptr) {
		_, err = PollUntil([]unix.PollFd{{Fd: int32(fd), Events: events}}, deadline)
		if err == ErrTimeout {
			err = nil // said below
		}
	})
	if cerr != nil {
		return q.closedError("poll", cerr)
	}
	if err != nil {
		return q.errorf("poll", "%v", err)
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return ErrTimeout
	}
	return nil
}

// Unlink removes the queue's kernel name; the queue lives on while any
// descriptor is open. Unlinking a name that is already gone is not an error.
func (q *Mqueue) Unlink() error {
	if q.kname == "" {
		return nil
	}
	if err := mqUnlink(q.kname); err != nil {
		return q.errorf("unlink", "%v", err)
	}
	return nil
}

// Close closes this process's descriptor. The queue and its name remain
// (Unlink removes the name).
func (q *Mqueue) Close() error {
	q.closed.Store(true)
	if err := q.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return q.errorf("close", "%v", err)
	}
	return nil
}

// mqUnlink removes kname ("/..."); a name already gone is not an error.
func mqUnlink(kname string) error {
	p, err := unix.BytePtrFromString(strings.TrimPrefix(kname, "/"))
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0)
	if e != 0 && e != unix.ENOENT {
		return fmt.Errorf("mq_unlink %s: %w", kname, e)
	}
	return nil
}

// CheckMqueueLimits checks a queue of capacity messages of msgsize bytes
// against the kernel's limits and says which one it exceeds, e.g.
//
//	mqueue "orders": capacity 50 exceeds /proc/sys/fs/mqueue/msg_max = 10
//
// The sysctl limits are applied even to a privileged process (which the
// kernel would let exceed them), so a script behaves the same for every
// user. RLIMIT_MSGQUEUE counts all of a user's queues; only this queue's
// share is checked here.
func CheckMqueueLimits(name string, capacity, msgsize int) error {
	if capacity < 1 {
		return fmt.Errorf("mqueue %q: capacity %d must be at least 1", name, capacity)
	}
	if msgsize < 1 {
		return fmt.Errorf("mqueue %q: msgsize %d must be at least 1", name, msgsize)
	}
	if max, err := strconv.Atoi(readProcLimit("msg_max")); err == nil && capacity > max {
		return fmt.Errorf("mqueue %q: capacity %d exceeds %smsg_max = %d (raise it with sysctl fs.mqueue.msg_max=%d)", name, capacity, mqProcDir, max, capacity)
	}
	if max, err := strconv.Atoi(readProcLimit("msgsize_max")); err == nil && msgsize > max {
		return fmt.Errorf("mqueue %q: msgsize %d exceeds %smsgsize_max = %d (raise it with sysctl fs.mqueue.msgsize_max=%d)", name, msgsize, mqProcDir, max, msgsize)
	}
	if max, err := strconv.Atoi(readProcLimit("queues_max")); err == nil && max < 1 {
		return fmt.Errorf("mqueue %q: %squeues_max = %d allows no queue", name, mqProcDir, max)
	}
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_MSGQUEUE, &rl) == nil && rl.Cur != unix.RLIM_INFINITY {
		need := uint64(capacity) * uint64(msgsize+mqMsgOverhead)
		if need > rl.Cur {
			return fmt.Errorf("mqueue %q: capacity %d × msgsize %d needs about %d bytes, more than RLIMIT_MSGQUEUE = %d (ulimit -q)", name, capacity, msgsize, need, rl.Cur)
		}
	}
	return nil
}

// readProcLimit reads /proc/sys/fs/mqueue/<name>, or "?" when it cannot.
func readProcLimit(name string) string {
	b, err := os.ReadFile(mqProcDir + name)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
