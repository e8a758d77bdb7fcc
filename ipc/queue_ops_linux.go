package ipc

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Filter selects which messages a Receive may take. The zero Filter takes
// the first message queued.
type Filter struct {
	Type   string
	ByType bool // only messages of Type
	Src    int32
	BySrc  bool // only messages from Src
}

func (f *Filter) match(h *Header, typ []byte) bool {
	return (!f.BySrc || h.Src == f.Src) && (!f.ByType || string(typ) == f.Type)
}

// rendezvousGrace is how long a non-blocking send on a rendezvous queue
// gives a receiver that is already waiting to take the message before it is
// withdrawn with ErrFull. A receiver asleep needs a wakeup (~10 µs, more on
// a busy machine) to take it. With no receiver waiting, ErrFull is
// immediate.
const rendezvousGrace = 5 * time.Millisecond

// Send queues m. It waits while the queue is full (capacity n > 0: n queued,
// in total or from this sender with PerSender), and on a rendezvous queue
// (capacity 0) until a receiver has taken m. An unbounded queue waits only
// when the ring's bytes are exhausted.
//
// A sender asleep for room in a mailbox of capacity 8 or more is woken
// once the queue is down to a quarter of its capacity, or within about
// roomDebtDelay of the room it was not woken for (queue_room_linux.go).
//
// It returns ErrFull (NonBlocking and no room; for rendezvous: no receiver
// took m at once), ErrTimeout or ErrClosed. A rendezvous message not taken
// by then is withdrawn: it is never delivered later. An oversize message is
// refused with an error wrapping ErrTooLarge. Nothing is ever half-sent.
//
// When m.Time is 0 the queued message carries the send time (CLOCK_MONOTONIC
// ns); m itself is not modified.
func (q *Queue) Send(m *Message, w WaitOpts) error {
	if len(m.Type) > MaxTypeLen || m.Size() > MaxMessageSize { // m.Check(), inlined
		return fmt.Errorf("%s: send: %w", q.name, m.Check())
	}
	rec := (recPrefix + uint64(m.EncodedLen()) + 7) &^ 7
	if rec > q.size {
		return tooLarge("%s: send: message of %d bytes does not fit the queue's %d-byte ring", q.name, m.Size(), q.size)
	}
	var slot *senderSlot
	if q.h.perSender != 0 {
		if slot = q.slot(m.Src); slot == nil {
			return fmt.Errorf("%s: send: sender index %d out of range -1..%d", q.name, m.Src, MaxSenders-2)
		}
	}
	capacity := int(q.h.capacity)
	if slot != nil {
		capacity = int(slot.capacity(q.h.capacity))
	}
	now := m.Time
	if now == 0 {
		now = monoNow()
	}
	var deadline time.Time
	if w.Timeout > 0 {
		deadline = w.Deadline()
	}
	held := q.claimRoom(capacity)
	if held {
		hook(hookRoomClaimed)
	}
	for {
		seen := q.h.room.Load()
		q.lock()
		if q.h.closed.Load() != 0 {
			q.unlock()
			q.releaseRoom(&held)
			return ErrClosed
		}
		if capacity == 0 && w.NonBlocking && q.h.recvWaiting.Load() == 0 {
			q.unlock()
			q.releaseRoom(&held)
			return ErrFull
		}
		var queued int
		if slot != nil {
			queued = int(slot.count.Load())
		} else {
			queued = int(q.h.count.Load())
		}
		pos, ok := uint64(0), false
		if capacity <= 0 || queued < capacity {
			pos, ok = q.appendLocked(m, rec, now, slot)
		}
		q.unlock()
		if ok {
			q.wake(&q.h.recvSleepers)
			hook(hookRoomSent)
			q.releaseRoom(&held)
			if capacity == 0 {
				return q.awaitTake(pos, deadline, w.NonBlocking)
			}
			q.ws.Done()
			return nil
		}
		if w.NonBlocking {
			q.releaseRoom(&held)
			return ErrFull
		}
		if err := q.waitRoom(seen, deadline, &held); err != nil {
			q.releaseRoom(&held)
			return err
		}
	}
}

// appendLocked writes m as a record at tail and commits it. It returns the
// record's position, or false when the ring lacks the bytes.
func (q *Queue) appendLocked(m *Message, rec uint64, now int64, slot *senderSlot) (uint64, bool) {
	head, tail := q.h.head.Load(), q.h.tail.Load()
	off := q.at(tail)
	var pad uint64
	if off+rec > q.size {
		pad = q.size - off
	} else if off >= rewindAt && rewindRoom*(tail-head+rec) <= off {
		// Back to the ring's start early: every live record lies beyond
		// the room this one needs there, with room for rewindRoom-1 times
		// as many bytes as are queued (see rewindAt).
		pad = q.size - off
	}
	if tail+pad+rec-head > q.size {
		return 0, false
	}
	if pad > 0 {
		q.setRecord(off, recPad, pad)
		tail, off = tail+pad, 0
	}
	b := q.ring[off+recPrefix : off+rec]
	PutMessage(b, m)
	if m.Time == 0 {
		putTime(b, now)
	}
	q.setRecord(off, recLive, rec)
	hook(hookWritten)
	q.h.tail.Store(tail + rec) // the commit
	hook(hookCommitted)
	q.h.count.Add(1)
	if slot != nil {
		slot.count.Add(1)
	}
	q.h.word.Add(1)
	return tail, true
}

// awaitTake waits until the rendezvous record at pos is taken, or withdraws
// it.
func (q *Queue) awaitTake(pos uint64, deadline time.Time, nonBlocking bool) error {
	fail := ErrTimeout
	if nonBlocking {
		fail = ErrFull
		if g := time.Now().Add(rendezvousGrace); deadline.IsZero() || g.Before(deadline) {
			deadline = g
		}
	}
	for {
		seen := q.h.word.Load()
		if q.taken(pos) {
			q.ws.Done()
			return nil
		}
		if q.h.closed.Load() != 0 {
			return q.withdraw(pos, ErrClosed)
		}
		if err := q.wait(seen, deadline, false, -1); err == ErrTimeout {
			return q.withdraw(pos, fail)
		} else if err != nil {
			if e := q.withdraw(pos, err); e == nil {
				return nil
			}
			return err
		}
	}
}

// taken reports whether the record at pos has been taken; it needs no lock.
// A record is gone once head passed it; before that its state tells. When
// the slot was reused between the two loads the answer may be a stale
// false, never a wrong true: reuse means head passed pos, and only the
// waiting sender itself withdraws.
func (q *Queue) taken(pos uint64) bool {
	return q.h.head.Load() > pos || q.state(q.at(pos)).Load() == recTaken
}

// withdraw takes back the rendezvous record at pos unless a receiver took it
// first (then the send succeeded: nil).
func (q *Queue) withdraw(pos uint64, err error) error {
	q.lock()
	if q.taken(pos) {
		q.unlock()
		q.ws.Done()
		return nil
	}
	off := q.at(pos)
	q.uncountLocked(recordSrc(q.ring[off+recPrefix:]))
	q.state(off).Store(recWithdrawn)
	q.advanceLocked()
	q.unlock()
	q.wake(&q.h.sendSleepers)
	q.wakeRoom()
	return err
}

// Receive takes the first queued message that f matches into into, reusing
// into.Body's storage when it has the capacity. Other messages stay queued
// in order. It returns ErrEmpty (NonBlocking and nothing matching),
// ErrTimeout, or ErrClosed when the queue is closed and holds nothing
// matching, or when f is BySrc, nothing from Src is queued and that sender
// is gone (SenderGone).
func (q *Queue) Receive(f Filter, w WaitOpts, into *Message) error {
	var deadline time.Time
	if w.Timeout > 0 { // w.Deadline(), without the call when there is none
		deadline = w.Deadline()
	}
	peer := int32(-1)
	var gone *senderSlot
	if f.BySrc {
		peer, gone = f.Src, q.slot(f.Src)
	}
	for {
		// Load order matters: closed and gone before count, so that a
		// message committed before the close (or before its sender went) is
		// seen by the scan.
		seen := q.h.word.Load()
		closed := q.h.closed.Load() != 0
		isGone := gone != nil && gone.gone.Load() != 0
		if q.h.count.Load() != 0 {
			q.lock()
			ok, err := q.takeLocked(&f, into)
			q.unlock()
			if err != nil {
				return err
			}
			if ok {
				q.wake(&q.h.sendSleepers)
				hook(hookRoomWake)
				q.wakeRoom()
				q.ws.Done()
				return nil
			}
		}
		if closed || isGone {
			return ErrClosed
		}
		if w.NonBlocking {
			return ErrEmpty
		}
		if err := q.wait(seen, deadline, true, peer); err != nil {
			return err
		}
	}
}

// takeLocked takes the first live record f matches. The record at head,
// the one almost every receive takes, is read in one pass (takeRecord) and
// head moves past it without reading its length again.
func (q *Queue) takeLocked(f *Filter, into *Message) (bool, error) {
	head, tail := q.h.head.Load(), q.h.tail.Load()
	for p := head; p < tail; {
		off := q.at(p)
		n := q.recLen(off)
		if !q.validAt(p, off, tail, n) {
			return false, fmt.Errorf("%s: receive: queue memory corrupt at %d", q.name, p)
		}
		if q.state(off).Load() == recLive {
			src, ok, bad := takeRecord(q.ring[off+recPrefix:off+n], f, into)
			if bad {
				return false, q.corrupt(p, q.ring[off+recPrefix:off+n])
			}
			if ok {
				q.uncountLocked(src)
				q.state(off).Store(recTaken) // the take
				hook(hookTaken)
				if p == head {
					q.advanceFrom(p + n)
				} else {
					q.advanceLocked()
				}
				return true, nil
			}
		}
		p += n
	}
	return false, nil
}

// takeRecord fills into from the encoded message b when f matches it (ok),
// and returns its src. bad: b is not a valid message (corrupt's error says
// why); into is then untouched. It is DecodeHeader, Filter.match and
// Header.fill in one pass over the header, reading nothing twice.
func takeRecord(b []byte, f *Filter, into *Message) (src int32, ok, bad bool) {
	if len(b) < HeaderSize {
		return 0, false, true
	}
	w0 := binary.LittleEndian.Uint64(b[0:8]) // magic, version, reserved, flags, type length
	if uint32(w0) != headerMagic|headerVersion<<16 || binary.LittleEndian.Uint32(b[20:24]) != 0 {
		return 0, false, true
	}
	typeLen, bodyLen := int(w0>>48), int(binary.LittleEndian.Uint32(b[8:12]))
	if typeLen > MaxTypeLen || bodyLen < 0 || bodyLen > MaxMessageSize-typeLen || HeaderSize+typeLen+bodyLen > len(b) {
		return 0, false, true
	}
	src = int32(binary.LittleEndian.Uint32(b[12:16]))
	typ := b[HeaderSize : HeaderSize+typeLen]
	if f.BySrc && src != f.Src || f.ByType && string(typ) != f.Type {
		return src, false, false
	}
	into.Flags, into.Src = uint16(w0>>32), src
	into.Dst = int32(binary.LittleEndian.Uint32(b[16:20]))
	into.Seq = binary.LittleEndian.Uint64(b[24:32])
	into.Time = int64(binary.LittleEndian.Uint64(b[32:40]))
	setType(into, typ)
	body := b[HeaderSize+typeLen : HeaderSize+typeLen+bodyLen]
	into.Body = grow(into.Body[:0], len(body))
	copy(into.Body, body)
	return src, true, false
}

// corrupt is takeLocked's error for the record at p whose message b
// takeRecord found bad.
func (q *Queue) corrupt(p uint64, b []byte) error {
	h, err := DecodeHeader(b)
	if err == nil && HeaderSize+h.Size() > len(b) {
		err = fmt.Errorf("%w: header says %d bytes follow, the record holds %d", ErrBadHeader, h.Size(), len(b)-HeaderSize)
	}
	return fmt.Errorf("%s: receive: queue memory corrupt at %d: %v", q.name, p, err)
}

// validRecord checks a record length read from shared memory before it is
// trusted: any process holding the memfd could have scribbled on it.
func (q *Queue) validRecord(p, tail, n uint64) bool {
	return q.validAt(p, q.at(p), tail, n)
}

// validAt is validRecord for the record at p whose ring offset off is known.
func (q *Queue) validAt(p, off, tail, n uint64) bool {
	return n >= recPrefix && n%8 == 0 && p+n <= tail && off+n <= q.size
}

// at is position p's offset in the ring: p % q.size, without a division
// when the ring's size is a power of two (the default's is).
func (q *Queue) at(p uint64) uint64 {
	if q.mask != 0 {
		return p & q.mask
	}
	return p % q.size
}

// uncountLocked takes a record from src out of the counts, just before it is
// taken or withdrawn (so that once a rendezvous sender sees its record
// taken, Len no longer counts it).
func (q *Queue) uncountLocked(src int32) {
	q.h.count.Add(^uint32(0))
	if q.h.perSender != 0 {
		if s := q.slot(src); s != nil {
			s.count.Add(^uint32(0))
		}
	}
}

// advanceLocked moves head past every record no longer live, after a take
// or withdrawal, and rewinds an emptied queue to the ring's start.
func (q *Queue) advanceLocked() { q.advanceFrom(q.h.head.Load()) }

// advanceFrom is advanceLocked knowing that no record before head is
// live: a take of the record at head passes its end.
func (q *Queue) advanceFrom(head uint64) {
	tail := q.h.tail.Load()
	for head < tail {
		off := q.at(head)
		n := q.recLen(off)
		if q.state(off).Load() == recLive || !q.validAt(head, off, tail, n) {
			break
		}
		head += n
	}
	if head == tail {
		// Empty: jump to the ring's start with a pad record, committed like
		// a send by the store of tail, so a crash here is harmless too.
		if off := q.at(tail); off >= rewindAt {
			q.setRecord(off, recPad, q.size-off)
			tail += q.size - off
			q.h.tail.Store(tail)
			head = tail
		}
	}
	q.h.head.Store(head)
	q.h.word.Add(1)
	q.h.room.Add(1)
}

// recordSrc reads the src field of an encoded message.
func recordSrc(b []byte) int32 {
	return int32(binary.LittleEndian.Uint32(b[12:16]))
}

// putTime overwrites the time field of an encoded header.
func putTime(b []byte, t int64) {
	binary.LittleEndian.PutUint64(b[32:40], uint64(t))
}
