package ipc

// Sender slots of processes made at run time. A slot (a sender index) is
// given to a new process once its previous process has ended and no queue
// holds a message of it any more (HoldsFrom), so a receiver never names
// the new process as the sender of the old one's message.

// SetSenderCapacity sets the capacity (Unbounded, 0, n) of sender i's
// messages in a PerSender queue: for a process made after the queue (an
// instance ipc.spawn started), set before that process can send. Indexes
// outside -1..MaxSenders-2 are ignored.
func (q *Queue) SetSenderCapacity(i int32, c int) {
	if s := q.slot(i); s != nil {
		s.setCap(c)
	}
}

// ReuseSender gives sender index i to a new process: its capacity c (as
// SetSenderCapacity) and no longer gone (SenderGone was its previous
// process's). Call it before the new process can send.
func (q *Queue) ReuseSender(i int32, c int) {
	if s := q.slot(i); s != nil {
		s.setCap(c)
		s.gone.Store(0)
	}
}

// HoldsFrom reports whether a message from sender i is still queued. A
// PerSender queue keeps the count; another is scanned under its lock.
func (q *Queue) HoldsFrom(i int32) bool {
	s := q.slot(i)
	if s == nil || q.h == nil {
		return false
	}
	if q.h.perSender != 0 {
		return s.count.Load() != 0
	}
	if q.h.count.Load() == 0 {
		return false
	}
	q.lock()
	defer q.unlock()
	for p, tail := q.h.head.Load(), q.h.tail.Load(); p < tail; {
		off := p % q.size
		n := q.recLen(off)
		if !q.validRecord(p, tail, n) {
			return false
		}
		if q.state(off).Load() == recLive {
			if h, err := DecodeHeader(q.ring[off+recPrefix : off+n]); err == nil && h.Src == i {
				return true
			}
		}
		p += n
	}
	return false
}
