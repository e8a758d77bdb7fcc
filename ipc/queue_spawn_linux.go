package ipc

// SetSenderCapacity sets the capacity (Unbounded, 0, n) of sender i's
// messages in a PerSender queue: for a process made after the queue (an
// instance ipc.spawn started), set before that process can send. Indexes
// outside -1..MaxSenders-2 are ignored.
func (q *Queue) SetSenderCapacity(i int32, c int) {
	if s := q.slot(i); s != nil {
		s.cap = int32(c)
	}
}
