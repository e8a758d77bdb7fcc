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
	Since    int64  // MonoNow() when the current wait began (CLOCK_MONOTONIC: one clock for every process)
	Doorbell uint32 // futex word a process may sleep on to be woken by anyone
	Line     int32  // the script line of the operation that blocks (0 unknown); see EnterHook
	// Ended is a futex word: the serial of the latest process of this
	// slot that the supervisor has reaped (SetEnded), 0 for none.
	Ended    uint32
	ExitCode int32 // its exit code, -1 when killed by a signal or never started
	Signal   int32 // the signal that killed it, or 0
	// Serial names the process that has the slot now (Assign): unique in
	// the run, from 1. A slot is given to a new process once its previous
	// one has ended (processes made at run time), so a reader that knows a
	// process by its slot checks the serial. 0 (never assigned) counts as 1.
	Serial uint32
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

// serial is the serial of the process that has slot s (see Serial).
func (s *WaitStatus) serial() uint32 {
	if v := atomic.LoadUint32(&s.Serial); v != 0 {
		return v
	}
	return 1
}

// SerialOf is the serial of the process that has slot i now.
func (t *StatusTable) SerialOf(i int) uint32 { return t.Slot(i).serial() }

// Assign gives slot i to the process with this serial, before it starts:
// its wait state and pid are cleared. What the slot's previous process
// recorded at its end (Ended, the exit code, the error) stays readable
// until this one ends: EndedOf tells them apart by serial.
func (t *StatusTable) Assign(i int, serial uint32) {
	s := t.Slot(i)
	atomic.StoreUint32(&s.State, StateRunning)
	atomic.StoreUint32(&s.Op, OpNone)
	atomic.StoreInt32(&s.Object, -1)
	atomic.StoreInt32(&s.Peer, 0)
	atomic.StoreUint32(&s.Deadline, 0)
	atomic.StoreInt32(&s.Pid, 0)
	atomic.StoreInt32(&s.Line, 0)
	atomic.StoreUint32(&s.Serial, serial)
}

// SetEnded records that the process in slot i ended: its exit code (-1
// when killed or never started), the signal that killed it (0 if none) and
// its error message (empty if none), then wakes whoever waits for it
// (WaitEnded). The supervisor calls it once it has reaped the process.
func (t *StatusTable) SetEnded(i, exitCode, signal int, errText string) {
	s := t.Slot(i)
	off := (t.n+1)*slotSize + i*epitaphSize
	ep := t.Region.Mem[off : off+epitaphSize]
	n := copy(ep[:epitaphSize-1], errText)
	ep[n] = 0
	atomic.StoreInt32(&s.ExitCode, int32(exitCode))
	atomic.StoreInt32(&s.Signal, int32(signal))
	atomic.StoreUint32(&s.Ended, s.serial())
	FutexWake(&s.Ended, 1<<30)
}

// Ended reports whether the process that has slot i now has ended, and if
// so how.
func (t *StatusTable) Ended(i int) (ended bool, exitCode, signal int, errText string) {
	ended, exitCode, signal, errText, _ = t.EndedOf(i, t.SerialOf(i))
	return
}

// EndedOf reports whether process serial, given slot i, has ended, and if
// so how. reused is true when the slot has been given to another process
// since: it ended, but how is no longer here (the supervisor knows).
func (t *StatusTable) EndedOf(i int, serial uint32) (ended bool, exitCode, signal int, errText string, reused bool) {
	s := t.Slot(i)
	if s.serial() != serial {
		return true, 0, 0, "", true
	}
	if atomic.LoadUint32(&s.Ended) != serial {
		return false, 0, 0, "", false
	}
	off := (t.n+1)*slotSize + i*epitaphSize
	ep := t.Region.Mem[off : off+epitaphSize]
	n := 0
	for n < len(ep) && ep[n] != 0 {
		n++
	}
	exitCode, signal, errText = int(atomic.LoadInt32(&s.ExitCode)), int(atomic.LoadInt32(&s.Signal)), string(ep[:n])
	if s.serial() != serial { // given away while we read
		return true, 0, 0, "", true
	}
	return true, exitCode, signal, errText, false
}

// WaitEnded waits until the process that has slot i now has ended
// (SetEnded), or the deadline (zero: none) passes (ErrTimeout).
func (t *StatusTable) WaitEnded(i int, deadline time.Time) error {
	return t.WaitEndedOf(i, t.SerialOf(i), deadline)
}

// WaitEndedOf waits until process serial, given slot i, has ended (or the
// slot has been given to another, which means it has), or the deadline
// (zero: none) passes (ErrTimeout).
func (t *StatusTable) WaitEndedOf(i int, serial uint32, deadline time.Time) error {
	s := t.Slot(i)
	for {
		v := atomic.LoadUint32(&s.Ended)
		if v == serial || s.serial() != serial {
			return nil
		}
		if err := FutexWait(&s.Ended, v, deadline); err != nil {
			if err == ErrTimeout && (atomic.LoadUint32(&s.Ended) == serial || s.serial() != serial) {
				return nil
			}
			return err
		}
	}
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
	atomic.StoreInt64(&s.Since, monoNow()) // not time.Now(): two clock reads, on every wait
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
