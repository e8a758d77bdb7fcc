package ipc

import (
	"fmt"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Queue is a message queue in shared memory: the transport under mailboxes
// and direct-link inboxes. Any number of processes (and goroutines) send and
// receive through it at once. A message costs no system call when the peer
// is busy: the queue is a ring of records in a memfd mapped by every
// process, guarded by a short futex-based lock, and a FUTEX_WAKE is issued
// only when someone actually sleeps.
//
// Layout of the memfd (all integers little-endian, native atomics):
//
//	0      qheader: geometry, lock word, head/tail/count, futex word (256 bytes)
//	4096   MaxSenders sender slots of 16 bytes (slot i+1 is sender index i)
//	69632  the ring, ringBytes bytes
//
// The ring holds records at absolute byte positions that only grow (a
// position's place in the ring is pos % ringBytes). Records between head and
// tail are the queue; each is 8-byte aligned:
//
//	offset size field
//	     0    4 state: recLive, recTaken, recWithdrawn or recPad
//	     4    4 record length, the 8-byte multiple to the next record
//	     8      the encoded message (message.go): header, type, body
//
// A record that would cross the ring's end is preceded by a pad record that
// fills the rest of the ring.
//
// Crash safety. Every change happens under the lock, and is ordered so that
// a process killed at any instruction leaves a queue that the next lock
// holder repairs (repairLocked): a send writes its record past tail and makes
// it visible with the single store of the new tail; a receive takes a record
// with the single store of its state. Everything else (head, count, the
// per-sender counts) is derived and recomputed by scanning head..tail. The
// lock word holds the owner's pid, so a waiter can tell that the owner died.
//
// Space is reused from the ring's start as soon as the records still live
// leave room there (see rewindAt), so the pages a queue makes resident are
// about rewindAt plus what is queued at once, not the ring's size.
//
// Limits, by design:
//   - Space is reclaimed from head only. A message left queued (unmatched by
//     every selective receive) while QueueConfig.Bytes of later traffic
//     passes it exhausts the ring: sends then wait for room (ErrFull when
//     non-blocking) until it is taken.
//   - A process killed while waiting leaves the sleeper counts one too high:
//     senders then issue a FUTEX_WAKE that nobody needs (harmless, ~1 µs).
//   - A dead lock owner is found by its pid; if the pid is reused before
//     anyone notices, only Recover by the supervisor that reaped it helps.
type Queue struct {
	name   string
	r      *Region
	h      *qheader
	slots  *[MaxSenders]senderSlot
	ring   []byte
	size   uint64 // ring bytes
	mask   uint64 // size-1 when size is a power of two, else 0 (at)
	pid    uint32
	ws     *WaitStatus
	object int32
	spin   spinner // adaptive spin budget (spin_linux.go)
	debt   roomDebt
}

// QueueConfig describes a queue to create.
type QueueConfig struct {
	Name      string // used in errors, e.g. `mailbox "orders"`: the caller passes the display name
	Capacity  int    // Unbounded (-1), 0 = rendezvous, n > 0 = at most n queued
	PerSender bool   // count capacity per sender (a direct inbox) rather than in total (a mailbox)
	// With PerSender: the capacity for sender index i (Unbounded, 0, n);
	// senders at or beyond len(SenderCapacity), and the parent (-1), use
	// Capacity.
	SenderCapacity []int
	Bytes          int // ring bytes, rounded up to a page; default DefaultQueueBytes
	// Space, when set, is where NewQueue maps the queue (NewRegionIn):
	// queues that are closed together, unmapped together.
	Space *Space
}

const (
	// Unbounded is the capacity of a queue whose sends never wait for a
	// receiver. They wait only when the ring's bytes are exhausted (more
	// than QueueConfig.Bytes of messages queued), until receivers make room.
	Unbounded = -1

	// DefaultQueueBytes is the default ring size. The memfd is sparse: pages
	// the ring never reached cost nothing, and an emptied queue rewinds to
	// the ring's start (see advanceLocked), so an idle or keeping-up queue
	// touches only its first few hundred KiB.
	DefaultQueueBytes = 64 << 20

	// MaxSenders bounds sender indexes that the queue tracks per sender
	// (PerSender capacities, SenderGone): -1 (the parent) .. MaxSenders-2.
	MaxSenders = 4096
)

const (
	queueMagic   = 0x51435049 // "IPCQ"
	queueVersion = 2          // 2: a sender slot's capSet
	slotsOff     = 4096
	ringOff      = slotsOff + MaxSenders*16 // checked in init
	minRingBytes = 4096
	maxRingBytes = 1 << 30 // record lengths (pads too) are u32
	recPrefix    = 8
	// A send whose record would start past rewindAt in the ring goes back
	// to the ring's start when every live record lies after the room it
	// needs there, and an emptied queue whose tail is past rewindAt jumps to
	// the ring's start: steady traffic reuses the same hot pages instead of
	// walking (and making resident) the whole ring.
	rewindAt = 256 << 10
	// A send goes back early only when the records still queued (taken
	// ones not yet passed by head included) take at most 1/rewindRoom of
	// the ring up to it. After the rewind, sends can use only the room
	// before head until the receivers pass the end of the ring: with
	// rewindRoom 3 that room is at least twice the bytes queued, so a
	// backlog that is growing (sends outpacing receives by more than 3:2)
	// walks on into the ring instead, and an unbounded queue never makes
	// its senders wait for bytes that the ring has.
	rewindRoom = 3
)

// Record states.
const (
	recLive      uint32 = 1 // queued, not yet taken
	recTaken     uint32 = 2 // received
	recWithdrawn uint32 = 3 // a rendezvous send gave up
	recPad       uint32 = 4 // filler up to the ring's end
)

// qheader is the shared control block at the start of the memfd. Fields that
// change are on their own cache lines by who touches them.
type qheader struct {
	magic     uint32
	version   uint32
	ringOff   uint64
	ringBytes uint64
	capacity  int32
	perSender uint32
	_         [32]byte

	lock atomic.Uint32 // owner pid | lockContended; 0 = free
	_    [60]byte

	head   atomic.Uint64 // first record that may be live
	tail   atomic.Uint64 // end of the last committed record
	count  atomic.Uint32 // live records (derived)
	closed atomic.Uint32 // 1 once Close was called
	_      [40]byte

	word         atomic.Uint32 // futex word: bumped on commit, take, withdraw, close, gone, repair
	recvSleepers atomic.Uint32 // receivers (and selects) asleep on word
	sendSleepers atomic.Uint32 // rendezvous senders asleep on word, waiting for the take
	recvWaiting  atomic.Uint32 // receivers waiting at all, spinning or asleep
	// Redundant FUTEX_WAKEs are skipped with these (queue_wait_linux.go):
	sleepSeen atomic.Uint32 // the latest Word value a sleeper went to sleep on
	wokeUpTo  atomic.Uint32 // a wake-all was issued once Word had reached this
	selects   atomic.Uint32 // selects registered as waiters (AddWaiter)
	// Senders waiting for room sleep on their own futex word, so that a
	// take wakes one of them, not every sleeper (queue_room_linux.go):
	room         atomic.Uint32 // futex word: bumped when room is made (take, withdraw, close, repair)
	roomSleepers atomic.Uint32 // senders asleep on room
	roomWaiting  atomic.Uint32 // senders waiting for room at all, spinning or asleep
	roomWoken    atomic.Uint32 // 1: a wake on room was issued and no sleeper has run since
	roomSpinner  atomic.Uint32 // pid of the one sender spinning for room in a mailbox, 0 = none
	_            [16]byte
}

// senderSlot is the per-sender state.
//
// A slot's capacity is the header's unless capSet says it was set: NewQueue
// writes only the slots of SenderCapacity, so the pages of the other slots
// (a 4096-slot table is 64 KiB, 16 pages) are never touched and never
// faulted in, in the creating process or any other.
type senderSlot struct {
	count  atomic.Uint32 // live records from this sender (derived; PerSender only)
	cap    int32         // capacity for this sender (PerSender only), when capSet
	gone   atomic.Uint32 // 1 after SenderGone
	capSet uint32        // 1: cap is this sender's; 0: the header's capacity
}

// setCap gives the slot's sender capacity c. Callers set it before the
// sender can send (at creation, or before a spawned process runs).
func (s *senderSlot) setCap(c int) {
	s.cap = int32(c)
	s.capSet = 1
}

// capacity is the slot's sender capacity: its own if set, else def (the
// header's).
func (s *senderSlot) capacity(def int32) int32 {
	if s.capSet != 0 {
		return s.cap
	}
	return def
}

func init() {
	// The layout is shared between processes: keep it exactly as documented.
	if unsafe.Sizeof(qheader{}) != 256 || unsafe.Sizeof(senderSlot{}) != 16 || ringOff%4096 != 0 || ringOff < slotsOff+MaxSenders*unsafe.Sizeof(senderSlot{}) {
		panic("ipc: queue layout changed")
	}
}

// QueueRegionSize is the size of the region NewQueue makes for a ring of
// bytes (0: DefaultQueueBytes): what a Space for k such queues needs k of.
func QueueRegionSize(bytes int) int {
	if bytes == 0 {
		bytes = DefaultQueueBytes
	}
	return ringOff + max(minRingBytes, (bytes+4095)&^4095)
}

// NewQueue creates a queue in a new memfd.
func NewQueue(cfg QueueConfig) (*Queue, error) {
	if cfg.Capacity < Unbounded {
		return nil, fmt.Errorf("%s: capacity %d: want %d (unbounded), 0 (rendezvous) or more", cfg.Name, cfg.Capacity, Unbounded)
	}
	for i, c := range cfg.SenderCapacity {
		if c < Unbounded {
			return nil, fmt.Errorf("%s: capacity %d for sender %d: want %d (unbounded), 0 (rendezvous) or more", cfg.Name, c, i, Unbounded)
		}
	}
	if len(cfg.SenderCapacity) > MaxSenders-1 {
		return nil, fmt.Errorf("%s: %d sender capacities exceed the %d-sender limit", cfg.Name, len(cfg.SenderCapacity), MaxSenders-1)
	}
	if cfg.Bytes < 0 || cfg.Bytes > maxRingBytes {
		return nil, fmt.Errorf("%s: ring of %d bytes: want at most %d", cfg.Name, cfg.Bytes, maxRingBytes)
	}
	size := QueueRegionSize(cfg.Bytes)
	r, err := NewRegionIn(cfg.Space, memfdLabel(cfg.Name), size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	q := newQueue(cfg.Name, r)
	h := q.h
	h.ringOff = ringOff
	h.ringBytes = uint64(size - ringOff)
	h.capacity = int32(cfg.Capacity)
	if cfg.PerSender {
		h.perSender = 1
		for i, c := range cfg.SenderCapacity {
			q.slots[i+1].setCap(c)
		}
	}
	h.version = queueVersion
	atomic.StoreUint32(&h.magic, queueMagic)
	q.init()
	return q, nil
}

// OpenQueue maps a queue from an inherited memfd (NewQueue's File in the
// creating process). Only cfg.Name is used: the geometry and capacities are
// read from the shared header, which is checked. On error f is left open.
func OpenQueue(f *os.File, cfg QueueConfig) (*Queue, error) {
	r, err := OpenRegion(f)
	if err != nil {
		return nil, fmt.Errorf("%s: open queue: %w", cfg.Name, err)
	}
	fail := func(format string, args ...any) (*Queue, error) {
		r.File = nil // the caller's to close
		r.Close()
		return nil, fmt.Errorf("%s: open queue: "+format, append([]any{cfg.Name}, args...)...)
	}
	if len(r.Mem) < ringOff+minRingBytes {
		return fail("descriptor of %d bytes is not a queue", len(r.Mem))
	}
	q := newQueue(cfg.Name, r)
	h := q.h
	if m := atomic.LoadUint32(&h.magic); m != queueMagic {
		return fail("descriptor is not a queue (magic %#x)", m)
	}
	if h.version != queueVersion {
		return fail("queue version %d, want %d", h.version, queueVersion)
	}
	if h.ringOff != ringOff || h.ringBytes%4096 != 0 || h.ringBytes > maxRingBytes || h.ringOff+h.ringBytes != uint64(len(r.Mem)) {
		return fail("bad geometry: ring of %d bytes at %d in %d bytes", h.ringBytes, h.ringOff, len(r.Mem))
	}
	q.init()
	return q, nil
}

// memfdLabel makes a queue's name usable as a memfd name (seen in
// /proc/PID/fd): no '/', and short.
func memfdLabel(name string) string {
	name = strings.ReplaceAll(name, "/", "_")
	if len(name) > 200 {
		name = name[:200]
	}
	return "queue " + name
}

func newQueue(name string, r *Region) *Queue {
	return &Queue{
		name:   name,
		r:      r,
		h:      (*qheader)(ptrAt(r.Mem, 0)),
		slots:  (*[MaxSenders]senderSlot)(ptrAt(r.Mem, slotsOff)),
		pid:    uint32(unix.Getpid()),
		object: -1,
	}
}

func (q *Queue) init() {
	q.size = q.h.ringBytes
	if q.size&(q.size-1) == 0 {
		q.mask = q.size - 1
	}
	q.ring = q.r.Mem[ringOff : ringOff+int(q.size) : ringOff+int(q.size)]
	q.spin.budget.Store(int64(spinMax))
}

// File is the memfd to hand to other processes (exec.Cmd.ExtraFiles).
func (q *Queue) File() *os.File { return q.r.File }

// Name is the name used in errors.
func (q *Queue) Name() string { return q.name }

// Len is the number of messages queued now.
func (q *Queue) Len() int { return int(q.h.count.Load()) }

// Word is the futex word that changes whenever a message is committed,
// taken or withdrawn, or the queue is closed. A select reads it before
// trying a non-blocking Receive, then sleeps with FutexWaitAny on the words
// of all its queues, bracketed by AddWaiter and DoneWaiter.
func (q *Queue) Word() *uint32 { return (*uint32)(unsafe.Pointer(&q.h.word)) }

// AddWaiter registers a sleeping select as a receiver, so that senders
// FUTEX_WAKE Word(). Call it before the non-blocking Receive that precedes
// the sleep, and DoneWaiter after waking.
func (q *Queue) AddWaiter() {
	q.h.selects.Add(1) // a select sleeps on a value read later: every wake is issued
	q.h.recvWaiting.Add(1)
	q.h.recvSleepers.Add(1)
}

// DoneWaiter undoes AddWaiter.
func (q *Queue) DoneWaiter() {
	q.h.recvSleepers.Add(^uint32(0))
	q.h.recvWaiting.Add(^uint32(0))
	q.h.selects.Add(^uint32(0))
}

// SetStatus makes the queue record its blocking waits in ws under the given
// object id (nil: don't record). Call it before using the queue.
func (q *Queue) SetStatus(ws *WaitStatus, object int32) {
	q.ws, q.object = ws, object
}

// Shutdown closes the queue for every process that holds it (a mailbox's
// close()): sends fail with ErrClosed, receives take what is still queued
// and then fail with ErrClosed. Every sleeper is woken. The mapping stays:
// Close unmaps this process's view.
func (q *Queue) Shutdown() error {
	q.lock()
	q.h.closed.Store(1)
	q.h.word.Add(1)
	q.h.room.Add(1)
	q.unlock()
	FutexWake(q.Word(), math.MaxInt32)
	FutexWake(q.roomWord(), math.MaxInt32)
	return nil
}

// SenderGone records that sender i will never send again (its process
// exited): a receive from i alone that finds nothing queued from i then
// returns ErrClosed instead of waiting forever. Sleepers are woken. Indexes
// outside -1..MaxSenders-2 are ignored.
func (q *Queue) SenderGone(i int32) {
	s := q.slot(i)
	if s == nil {
		return
	}
	s.gone.Store(1)
	q.h.word.Add(1)
	q.wake(&q.h.recvSleepers) // only a sleeping receiver can be waiting for i
}

// Close unmaps this process's view and closes its descriptor, as Close
// does for every object: the queue lives on in other processes (Shutdown
// closes it for all). The Queue must not be used afterwards.
func (q *Queue) Close() error {
	if q.r == nil {
		return nil
	}
	q.closeDebt() // pays a deferred room wake (queue_room_linux.go)
	err := q.r.Close()
	q.r, q.h, q.slots, q.ring = nil, nil, nil, nil
	return err
}

// slot returns sender i's slot, or nil when i is out of range.
func (q *Queue) slot(i int32) *senderSlot {
	if i < -1 || i > MaxSenders-2 {
		return nil
	}
	return &q.slots[i+1]
}

// Record access. off is a ring offset (pos % size) of a record.

func (q *Queue) state(off uint64) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&q.ring[off]))
}

func (q *Queue) recLen(off uint64) uint64 {
	return uint64(*(*uint32)(unsafe.Pointer(&q.ring[off+4])))
}

func (q *Queue) setRecord(off uint64, state uint32, n uint64) {
	*(*uint32)(unsafe.Pointer(&q.ring[off+4])) = uint32(n)
	q.state(off).Store(state)
}
