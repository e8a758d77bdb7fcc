package trace

import (
	"encoding/binary"
	"errors"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/ipc"
)

// Board is where clocks wait to be picked up when no message carries them:
// one slot per declared object, in a memfd shared by the run's processes.
//
//   - Semaphores and mutexes (Release / Acquire): a post or an unlock joins
//     its clock into the slot; a wait or a lock merges the slot's clock into
//     its own. The slot also remembers the latest releasing event, the
//     cause a view draws an arrow from.
//   - Byte streams (StreamWrite / StreamRead): a write reserves its byte
//     range of the object's cumulative offset and leaves its clock in a
//     ring of recent writes; a read takes its range of the cumulative read
//     offset and merges the clocks of the writes that produced its bytes.
//     The arrow is drawn from the write of the read's first byte. When
//     several processes write (or read) one stream at once, the order of
//     their reservations may differ from the kernel's by a write.
//
// Each slot has a small lock holding the holder's pid; a holder that died
// inside (a few dozen instructions) is detected and the lock taken over.
//
// After the objects' slots come one receipt slot per process: a rendezvous
// send (capacity 0) returns once a receiver took its message, and the
// receiver leaves its clock there (Receipt) for the sender to pick up
// (AwaitReceipt): the edge from the receive to the send's return.
//
// Last come the stream slots of socket connections, made at run time:
// ConnSlot finds or claims one by the key both ends compute (ConnKeys),
// in a table of keys after the slots.
type Board struct {
	region *ipc.Region
	n      int    // clock components per slot, and receipt slots
	slots  int    // object slots
	size   int    // bytes per slot
	tag    uint64 // the run's: ends a datagram that carries a clock (datagram.go)
}

// ConnSlots is how many connection directions a run's board can follow;
// the bytes of more connections are recorded without their clocks.
const ConnSlots = 128

const (
	boardMagic  = 0x44425449 // "ITBD"
	boardHeader = 64
	ringLen     = 32
	entryHead   = 32 // off, end, p+1, seq
)

// NewBoard creates a board for objects objects and n lanes (processes):
// each slot keeps n clock components, and there are n receipt slots. A
// lane at or beyond n (a process spawned after the board's lanes ran
// out) is carried by messages only.
func NewBoard(objects, n int) (*Board, error) { return newBoard(objects, n, n) }

// newBoard is NewBoard with only the first inUse lanes in use (UseLanes).
func newBoard(objects, n, inUse int) (*Board, error) {
	if objects < 1 {
		objects = 1
	}
	size := slotSize(n)
	r, err := ipc.NewRegion("trace-board", BoardBytes(objects, n))
	if err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint32(r.Mem[4:], uint32(n))
	binary.LittleEndian.PutUint32(r.Mem[8:], uint32(objects))
	binary.LittleEndian.PutUint32(r.Mem[boardInUse:], uint32(min(inUse, n)))
	var tag [8]byte
	if err := ipc.RandomBytes(tag[:]); err != nil {
		r.Close()
		return nil, err
	}
	copy(r.Mem[16:24], tag[:])
	binary.LittleEndian.PutUint32(r.Mem[0:], boardMagic)
	return &Board{region: r, n: n, slots: objects, size: size, tag: binary.LittleEndian.Uint64(tag[:])}, nil
}

// OpenBoard maps an inherited board; the Board owns f from then on.
func OpenBoard(f *os.File) (*Board, error) {
	r, err := ipc.OpenRegion(f)
	if err != nil {
		return nil, err
	}
	if len(r.Mem) < boardHeader || binary.LittleEndian.Uint32(r.Mem) != boardMagic {
		r.Close()
		return nil, errors.New("trace board: not an ipcscript clock board")
	}
	n := int(binary.LittleEndian.Uint32(r.Mem[4:]))
	objects := int(binary.LittleEndian.Uint32(r.Mem[8:]))
	b := &Board{region: r, n: n, slots: objects, size: slotSize(n), tag: binary.LittleEndian.Uint64(r.Mem[16:])}
	if b.keys()+ConnSlots*8 > len(r.Mem) {
		r.Close()
		return nil, errors.New("trace board: truncated")
	}
	return b, nil
}

// BoardBytes is the size of the memfd of a board for objects objects and
// n lanes: (objects + n + ConnSlots) slots of slotSize(n) bytes, each
// 1088 + 264*n bytes rounded up to 64 (a clock of n words, and a ring of
// ringLen writes each with a clock). Only the pages written cost memory:
// a semaphore's or a receipt's slot touches its first 64 + 8*n bytes, a
// stream's its ring as it fills.
func BoardBytes(objects, n int) int {
	if objects < 1 {
		objects = 1
	}
	return boardHeader + (objects+n+ConnSlots)*slotSize(n) + ConnSlots*8
}

// SpawnLaneBudget is the most a board may take (its memfd's size) for the
// lanes of spawned processes: SpawnLanes gives as many as fit.
const SpawnLaneBudget = 16 << 20

// SpawnLanes is how many lanes, beyond the declared ones, a run's board
// keeps clock components for when it may spawn processes (ipc.spawn): at
// most maxProcs - declared (no more can be live at once; processes
// spawned later, when earlier ones ended, get lanes beyond those), and as
// many as keep BoardBytes(objects, declared+K) within SpawnLaneBudget
// (or none, when the declared ones alone need more).
func SpawnLanes(objects, declared, maxProcs int) int {
	k := maxProcs - declared
	if k <= 0 {
		return 0
	}
	lo, hi := 0, k // the largest K in [0, k] within the budget
	for lo < hi {
		m := (lo + hi + 1) / 2
		if BoardBytes(objects, declared+m) <= SpawnLaneBudget {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return lo
}

// Lanes is how many processes' clock components the board carries: the
// lanes below it (lane = process index).
func (b *Board) Lanes() int { return b.n }

// The board's header keeps (at 12) how many of its lanes are in use: the
// declared processes', and those of the spawned ones so far. Lanes are
// given in order and never again, so every component at or beyond it is
// 0 in every clock and every slot: the board's operations copy and merge
// only the lanes in use (a run with templates does not pay for its K
// spawned lanes before it spawns).
const boardInUse = 12

// width is how many components the board's operations copy and merge.
func (b *Board) width() int {
	return min(int(atomic.LoadUint32(b.region.U32(boardInUse))), b.n)
}

// UseLanes says that lanes below n are in use (NewBoard: all of them;
// Collector.AddProc, for a spawned process). Call it before a process of
// lane n-1 can run.
func (b *Board) UseLanes(n int) {
	w := b.region.U32(boardInUse)
	for {
		v := atomic.LoadUint32(w)
		if int(v) >= n || atomic.CompareAndSwapUint32(w, v, uint32(n)) {
			return
		}
	}
}

// Carries reports whether lane p's clock component travels through the
// board (and p has a receipt slot for rendezvous sends).
func (b *Board) Carries(p int) bool { return b != nil && p >= 0 && p < b.n }

// File is the memfd to hand to the processes.
func (b *Board) File() *os.File { return b.region.File }

// Close unmaps the board and closes its descriptor.
func (b *Board) Close() error { return b.region.Close() }

// Slot layout: lock, cause p+1, cause seq, write offset, read offset, ring
// count, then the clock (n words), then the ring of writes.
func slotSize(n int) int {
	s := 64 + n*8 + ringLen*(entryHead+n*8)
	return (s + 63) &^ 63
}

type slot struct {
	b    *Board
	base int
}

// slot is the slot of an object (a declaration's index) or of a
// connection (an id from ConnSlot).
func (b *Board) slot(obj int) (slot, bool) {
	if obj < 0 || obj >= b.slots+b.n+ConnSlots || obj >= b.slots && obj < b.slots+b.n {
		return slot{}, false
	}
	return slot{b, boardHeader + obj*b.size}, true
}

func (s slot) u64(off int) *uint64 { return s.b.region.U64(s.base + off) }

func (s slot) lock() {
	w := s.b.region.U32(s.base)
	me := uint32(os.Getpid())
	for spins := 0; ; spins++ {
		if atomic.CompareAndSwapUint32(w, 0, me) {
			return
		}
		if spins&1023 == 1023 {
			if h := atomic.LoadUint32(w); h != 0 && unix.Kill(int(h), 0) == unix.ESRCH {
				atomic.CompareAndSwapUint32(w, h, 0) // the holder died inside
			}
			time.Sleep(time.Microsecond)
		}
	}
}

func (s slot) unlock() { atomic.StoreUint32(s.b.region.U32(s.base), 0) }

// join merges vc into the n words at off.
func (s slot) join(off int, vc VC) {
	for i, w := 0, s.b.width(); i < w && i < len(vc); i++ {
		p := s.u64(off + 8*i)
		if vc[i] > *p {
			*p = vc[i]
		}
	}
}

// acquire merges the n words at off into r's clock.
func (s slot) acquire(off int, r *Recorder) {
	for i, w := 0, s.b.width(); i < w; i++ {
		x := *s.u64(off + 8*i)
		if i < len(r.vc) {
			if x > r.vc[i] {
				r.vc[i] = x
			}
		} else if x != 0 {
			r.vc = append(r.vc, make(VC, i+1-len(r.vc))...)
			r.vc[i] = x
		}
	}
}

// Release leaves r's clock (its current event) in obj's slot.
func (b *Board) Release(obj int, r *Recorder) {
	s, ok := b.slot(obj)
	if !ok {
		return
	}
	s.lock()
	s.join(64, r.vc)
	*(*uint32)(unsafe.Pointer(&b.region.Mem[s.base+4])) = uint32(r.P + 1)
	*s.u64(8) = r.vc[r.P]
	s.unlock()
}

// Acquire merges obj's clock into r's and returns the latest releasing
// event (ok false when nothing was released yet).
func (b *Board) Acquire(obj int, r *Recorder) (cause Ref, ok bool) {
	s, ok := b.slot(obj)
	if !ok {
		return Ref{}, false
	}
	s.lock()
	p := *(*uint32)(unsafe.Pointer(&b.region.Mem[s.base+4]))
	seq := *s.u64(8)
	if p != 0 {
		s.acquire(64, r)
	}
	s.unlock()
	if p == 0 {
		return Ref{}, false
	}
	return Ref{P: int(p - 1), Seq: seq}, true
}

func (s slot) entry(i uint64) int {
	return 64 + s.b.n*8 + int(i%ringLen)*(entryHead+s.b.n*8)
}

// StreamWrite reserves n bytes of obj's write offset for r's current event
// (call it after Tick, before the write) and returns the offset of the
// first byte.
func (b *Board) StreamWrite(obj int, r *Recorder, n int64) int64 {
	s, ok := b.slot(obj)
	if !ok || n <= 0 {
		return 0
	}
	s.lock()
	off := *s.u64(16)
	*s.u64(16) = off + uint64(n)
	c := *s.u64(32)
	e := s.entry(c)
	*s.u64(e) = off
	*s.u64(e + 8) = off + uint64(n)
	*s.u64(e + 16) = uint64(r.P + 1)
	*s.u64(e + 24) = r.vc[r.P]
	for i, w := 0, b.width(); i < w; i++ {
		*s.u64(e + entryHead + 8*i) = r.vc.Get(i)
	}
	*s.u64(32) = c + 1
	s.unlock()
	return int64(off)
}

// StreamShort gives back the unwritten tail of a reservation: a write of
// want bytes at off that wrote only got. Only possible while nobody
// reserved after it; otherwise the offsets stay a little ahead.
func (b *Board) StreamShort(obj int, off, want, got int64) {
	s, ok := b.slot(obj)
	if !ok || got >= want {
		return
	}
	s.lock()
	if *s.u64(16) == uint64(off+want) {
		*s.u64(16) = uint64(off + got)
		c := *s.u64(32)
		if got == 0 {
			*s.u64(32) = c - 1
		} else {
			*s.u64(s.entry(c-1) + 8) = uint64(off + got)
		}
	}
	s.unlock()
}

// StreamRead takes n bytes of obj's read offset for r (after the read,
// before Tick), merges the clocks of the writes that produced them, and
// returns the offset of the first byte and the write that produced it.
func (b *Board) StreamRead(obj int, r *Recorder, n int64) (off int64, cause Ref, ok bool) {
	s, ok := b.slot(obj)
	if !ok || n <= 0 {
		return 0, Ref{}, false
	}
	s.lock()
	roff := *s.u64(24)
	*s.u64(24) = roff + uint64(n)
	end := roff + uint64(n)
	c := *s.u64(32)
	lo := uint64(0)
	if c > ringLen {
		lo = c - ringLen
	}
	found := false
	for i := c; i > lo; i-- {
		e := s.entry(i - 1)
		wo, we := *s.u64(e), *s.u64(e + 8)
		if we <= roff {
			break
		}
		if wo >= end {
			continue
		}
		s.acquire(e+entryHead, r)
		if wo <= roff {
			cause = Ref{P: int(*s.u64(e + 16)) - 1, Seq: *s.u64(e + 24)}
			found = true
		}
	}
	s.unlock()
	return int64(roff), cause, found
}

// A receipt slot holds, besides the lock and clock of every slot, the
// cause (p+1 at 4, seq at 8), the send it answers (at 16) and a futex word
// the sender sleeps on (at 24).

func (b *Board) receiptSlot(p int) (slot, bool) {
	if p < 0 || p >= b.n {
		return slot{}, false
	}
	return slot{b, boardHeader + (b.slots+p)*b.size}, true
}

// Receipt leaves r's clock (its receive of the message process sender
// sent as its event sendSeq) for the sender, and wakes it.
func (b *Board) Receipt(sender int, sendSeq uint64, r *Recorder) {
	s, ok := b.receiptSlot(sender)
	if !ok {
		return
	}
	s.lock()
	s.join(64, r.vc)
	*(*uint32)(unsafe.Pointer(&b.region.Mem[s.base+4])) = uint32(r.P + 1)
	*s.u64(8) = r.vc[r.P]
	*s.u64(16) = sendSeq
	w := b.region.U32(s.base + 24)
	atomic.AddUint32(w, 1)
	s.unlock()
	ipc.FutexWake(w, 1<<30)
}

// AwaitReceipt waits, until deadline, for the receipt of r's send sendSeq
// and merges the receiver's clock into r's; it returns the receive.
func (b *Board) AwaitReceipt(sendSeq uint64, r *Recorder, deadline time.Time) (cause Ref, ok bool) {
	s, ok := b.receiptSlot(r.P)
	if !ok {
		return Ref{}, false
	}
	w := b.region.U32(s.base + 24)
	for {
		s.lock()
		if *s.u64(16) >= sendSeq {
			s.acquire(64, r)
			cause = Ref{P: int(*(*uint32)(unsafe.Pointer(&b.region.Mem[s.base+4]))) - 1, Seq: *s.u64(8)}
			s.unlock()
			return cause, true
		}
		v := atomic.LoadUint32(w)
		s.unlock()
		if ipc.FutexWait(w, v, deadline) == ipc.ErrTimeout {
			return Ref{}, false
		}
	}
}

// keys is the offset of the connections' key table.
func (b *Board) keys() int { return boardHeader + (b.slots+b.n+ConnSlots)*b.size }

// ConnSlot finds, or claims, the stream slot of a connection's direction
// by its key (ConnKeys), for StreamWrite and StreamRead; ok is false when
// every slot is taken by other connections.
func (b *Board) ConnSlot(key uint64) (obj int, ok bool) {
	if key == 0 {
		key = 1
	}
	at := b.keys()
	for i := 0; i < ConnSlots; i++ {
		k := int((key + uint64(i)) % ConnSlots)
		w := b.region.U64(at + 8*k)
		for {
			v := atomic.LoadUint64(w)
			if v == key {
				return b.slots + b.n + k, true
			}
			if v != 0 {
				break
			}
			if atomic.CompareAndSwapUint64(w, 0, key) {
				return b.slots + b.n + k, true
			}
		}
	}
	return 0, false
}

// StreamFrom says that every byte of obj's stream comes from the event
// (p, seq) with clock vc: the stdout or stderr pipe of an exec'd program,
// which records nothing itself, so the reads of its output can only name
// its spawn (which did happen before every byte of it).
func (b *Board) StreamFrom(obj, p int, seq uint64, vc VC) {
	s, ok := b.slot(obj)
	if !ok {
		return
	}
	s.lock()
	c := *s.u64(32)
	e := s.entry(c)
	*s.u64(e) = 0
	*s.u64(e + 8) = 1 << 62
	*s.u64(e + 16) = uint64(p + 1)
	*s.u64(e + 24) = seq
	for i := 0; i < b.n; i++ {
		*s.u64(e + entryHead + 8*i) = vc.Get(i)
	}
	*s.u64(32) = c + 1
	s.unlock()
}

// A barrier's slot keeps one clock per phase, in the ring's entries (the
// phase modulo the ring's length; an entry's first word is the phase + 1
// it holds): each arrival joins its clock into its phase's entry, and a
// wait that phase ended merges exactly that entry. So a party slow to
// wake does not pick up the arrivals of the next phase. A wait more than
// ringLen phases behind (only possible when more processes than parties
// use the barrier) finds its entry taken and merges nothing.

// BarrierArrive joins r's clock (its arrival, ticked) into obj's entry of
// phase. Call it before the arrival counts (ipc.Barrier.WaitArrive).
func (b *Board) BarrierArrive(obj int, phase uint32, r *Recorder) {
	s, ok := b.slot(obj)
	if !ok {
		return
	}
	s.lock()
	e := s.entry(uint64(phase))
	if tag := uint64(phase) + 1; *s.u64(e) != tag {
		*s.u64(e) = tag
		for i, w := 0, b.width(); i < w; i++ {
			*s.u64(e + entryHead + 8*i) = 0
		}
	}
	for i, w := 0, b.width(); i < w && i < len(r.vc); i++ {
		if p := s.u64(e + entryHead + 8*i); r.vc[i] > *p {
			*p = r.vc[i]
		}
	}
	*s.u64(e + 16) = uint64(r.P + 1)
	*s.u64(e + 24) = r.vc[r.P]
	s.unlock()
}

// BarrierAcquire merges the arrivals of obj's phase into r's clock and
// returns the latest of them.
func (b *Board) BarrierAcquire(obj int, phase uint32, r *Recorder) (cause Ref, ok bool) {
	s, ok := b.slot(obj)
	if !ok {
		return Ref{}, false
	}
	s.lock()
	e := s.entry(uint64(phase))
	if *s.u64(e) == uint64(phase)+1 {
		s.acquire(e+entryHead, r)
		cause, ok = Ref{P: int(*s.u64(e + 16)) - 1, Seq: *s.u64(e + 24)}, true
	}
	s.unlock()
	return cause, ok
}

// StreamConsumed is for the stdin pipe of an exec'd program, which records
// nothing itself: once it has ended with unread bytes left in the pipe,
// the bytes before those were read by it. It returns the write that
// produced the last byte it read and the clocks of the writes (still in
// the ring) of the bytes it read; ok is false when it read nothing
// written by a traced process. A write under way as it ended (its range
// reserved, its bytes not yet in the pipe) counts as read.
func (b *Board) StreamConsumed(obj int, unread int64) (cause Ref, vc VC, ok bool) {
	s, found := b.slot(obj)
	if !found {
		return Ref{}, nil, false
	}
	s.lock()
	defer s.unlock()
	end := int64(*s.u64(16)) - unread
	if end <= 0 {
		return Ref{}, nil, false
	}
	c := *s.u64(32)
	lo := uint64(0)
	if c > ringLen {
		lo = c - ringLen
	}
	vc = make(VC, b.n)
	for i := c; i > lo; i-- {
		e := s.entry(i - 1)
		wo, we := int64(*s.u64(e)), int64(*s.u64(e + 8))
		if wo >= end || we <= wo {
			continue
		}
		for k := 0; k < b.n; k++ {
			if x := *s.u64(e + entryHead + 8*k); x > vc[k] {
				vc[k] = x
			}
		}
		if we >= end {
			cause, ok = Ref{P: int(*s.u64(e + 16)) - 1, Seq: *s.u64(e + 24)}, true
		}
	}
	return cause, vc, ok
}
