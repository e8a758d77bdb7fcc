package ipc

import (
	"sync/atomic"
	"time"
)

// StatusTable is a shared-memory table with one slot per process of a run.
// A process writes what it is doing into its own slot with plain atomic
// stores (no syscall, no round trip); the supervisor reads every slot to
// report who waits on what and to detect deadlock.
type StatusTable struct {
	Region *Region
	n      int
}

// Wait states.
const (
	StateRunning  uint32 = 0 // executing, or in a call that is not IPC
	StateBlocked  uint32 = 1 // sleeping in an IPC operation
	StateSleeping uint32 = 2 // in ipc.sleep: will wake by itself
	StateExited   uint32 = 3
)

// Ops recorded in a slot while blocked.
const (
	OpNone uint32 = iota
	OpSend
	OpReceive
	OpSelect
	OpLock
	OpWait // semaphore wait
	OpRead
	OpWrite
	OpOpen
	OpAccept
	OpConnect
	OpCondWait    // a condition variable's wait
	OpBarrierWait // a barrier's wait
	OpProcWait    // ipc.wait: the end of a process (Peer is its pid)
)

// OpNames names the ops for reports.
var OpNames = [...]string{"", "send", "receive", "select", "lock", "wait", "read", "write", "open", "accept", "connect", "wait", "wait", "wait for"}

const slotSize = 64

// WaitStatus is one process's slot. Fields are accessed atomically.
type WaitStatus struct {
	State    uint32 // StateRunning, StateBlocked, ...
	Op       uint32 // OpSend, OpReceive, ... while blocked
	Object   int32  // the object's declaration id while blocked (-1 none)
	Peer     int32  // pid of the process the wait depends on (a mutex holder); <= 0 any
	Deadline uint32 // 1 when the wait has a timeout (it will end by itself)
	Pid      int32
	Progress uint64 // completed IPC operations; deadlock needs it to stand still
	Since    int64  // unix nanoseconds when the current wait began
	Doorbell uint32 // futex word a process may sleep on to be woken by anyone
	Line     int32  // the script line of the operation that blocks (0 unknown); see EnterHook
	Ended    uint32 // futex word: 1 once the supervisor has reaped the process (SetEnded)
	ExitCode int32  // its exit code, -1 when killed by a signal or never started
	Signal   int32  // the signal that killed it, or 0
	_        [4]byte
}

// EnterHook, when set, runs at the start of every Enter, on the goroutine
// that is about to sleep. A child of a run sets it once, before its script
// runs, to record the script line of the blocking call in Line (what a
// timeout report shows). It costs nothing on operations that do not sleep.
var EnterHook func(s *WaitStatus)

// epitaphSize is the room, after the slots, for each process's error
// message once it has ended (what ipc.wait and a monitor's DOWN message
// report); a longer message is cut.
const epitaphSize = 256

// NewStatusTable creates a table for n processes.
func NewStatusTable(n int) (*StatusTable, error) {
	size := (n+1)*slotSize + n*epitaphSize
	r, err := NewRegion("status", size)
	if err != nil {
		return nil, err
	}
	return &StatusTable{Region: r, n: n}, nil
}

// OpenStatusTable maps an inherited status table.
func OpenStatusTable(r *Region) *StatusTable {
	return &StatusTable{Region: r, n: (len(r.Mem) - slotSize) / (slotSize + epitaphSize)}
}

// SetEnded records that process i ended: its exit code (-1 when killed or
// never started), the signal that killed it (0 if none) and its error
// message (empty if none), then wakes whoever waits for it (WaitEnded). The
// supervisor calls it once it has reaped the process.
func (t *StatusTable) SetEnded(i, exitCode, signal int, errText string) {
	s := t.Slot(i)
	off := (t.n+1)*slotSize + i*epitaphSize
	ep := t.Region.Mem[off : off+epitaphSize]
	n := copy(ep[:epitaphSize-1], errText)
	ep[n] = 0
	atomic.StoreInt32(&s.ExitCode, int32(exitCode))
	atomic.StoreInt32(&s.Signal, int32(signal))
	atomic.StoreUint32(&s.Ended, 1)
	FutexWake(&s.Ended, 1<<30)
}

// Ended reports whether process i has ended, and if so how.
func (t *StatusTable) Ended(i int) (ended bool, exitCode, signal int, errText string) {
	s := t.Slot(i)
	if atomic.LoadUint32(&s.Ended) == 0 {
		return false, 0, 0, ""
	}
	off := (t.n+1)*slotSize + i*epitaphSize
	ep := t.Region.Mem[off : off+epitaphSize]
	n := 0
	for n < len(ep) && ep[n] != 0 {
		n++
	}
	return true, int(atomic.LoadInt32(&s.ExitCode)), int(atomic.LoadInt32(&s.Signal)), string(ep[:n])
}

// WaitEnded waits until process i has ended (SetEnded), the deadline
// (zero: none) passes (ErrTimeout).
func (t *StatusTable) WaitEnded(i int, deadline time.Time) error {
	s := t.Slot(i)
	for atomic.LoadUint32(&s.Ended) == 0 {
		if err := FutexWait(&s.Ended, 0, deadline); err != nil {
			if err == ErrTimeout && atomic.LoadUint32(&s.Ended) != 0 {
				return nil
			}
			return err
		}
	}
	return nil
}

// Len is the number of slots.
func (t *StatusTable) Len() int { return t.n }

// The table's first 64 bytes are its header; its first word says whether
// every process of the run has been started.

// MarkStarted records that every process has been started (or failed to
// start) and wakes those waiting in WaitStarted.
func (t *StatusTable) MarkStarted() {
	w := t.Region.U32(0)
	atomic.StoreUint32(w, 1)
	FutexWake(w, 1<<30)
}

// WaitStarted waits until MarkStarted, so that a process body runs only
// once every process exists (its pid is in the table, its inbox mapped).
func (t *StatusTable) WaitStarted() {
	w := t.Region.U32(0)
	for atomic.LoadUint32(w) == 0 {
		FutexWait(w, 0, time.Time{})
	}
}

// Slot returns process i's slot (0 <= i < Len()).
func (t *StatusTable) Slot(i int) *WaitStatus {
	off := (i + 1) * slotSize
	_ = t.Region.Mem[off+slotSize-1]
	return (*WaitStatus)(ptrAt(t.Region.Mem, off))
}

// Enter records that the process is about to sleep in op on object. A nil
// receiver is allowed so objects used outside a run need no status table.
func (s *WaitStatus) Enter(op uint32, object, peer int32, hasDeadline bool) {
	if s == nil {
		return
	}
	if EnterHook != nil {
		EnterHook(s)
	}
	var d uint32
	if hasDeadline {
		d = 1
	}
	atomic.StoreInt32(&s.Object, object)
	atomic.StoreInt32(&s.Peer, peer)
	atomic.StoreUint32(&s.Op, op)
	atomic.StoreUint32(&s.Deadline, d)
	atomic.StoreInt64(&s.Since, time.Now().UnixNano())
	atomic.StoreUint32(&s.State, StateBlocked)
}

// Leave records that the wait is over.
func (s *WaitStatus) Leave() {
	if s == nil {
		return
	}
	atomic.StoreUint32(&s.State, StateRunning)
	atomic.StoreUint32(&s.Op, OpNone)
}

// Done counts one completed operation.
func (s *WaitStatus) Done() {
	if s == nil {
		return
	}
	atomic.AddUint64(&s.Progress, 1)
}

// SetState stores a state directly (sleeping, exited).
func (s *WaitStatus) SetState(st uint32) {
	if s == nil {
		return
	}
	atomic.StoreUint32(&s.State, st)
}
