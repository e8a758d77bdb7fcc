package check

import "sort"

// sent and received return the messages that went into and came out of
// the object (sends and receives that did not happen — "full", "timeout",
// "empty", "closed" — are left out).
func (t *Trace) messages(object string) (sent, recv []*Event) {
	for _, e := range t.Events {
		if e.Object != object || e.Outcome != "" {
			continue
		}
		switch e.Kind {
		case "send":
			sent = append(sent, e)
		case "receive":
			recv = append(recv, e)
		}
	}
	return sent, recv
}

// EachOnce checks that every message sent to the object was received
// exactly once, and that nothing was received that was not sent there.
func (t *Trace) EachOnce(object string) *Violation {
	sent, recv := t.messages(object)
	got := map[msgID][]*Event{}
	for _, r := range recv {
		id := msgID{r.Sender, r.MsgSeq}
		got[id] = append(got[id], r)
	}
	byID := map[msgID]*Event{}
	for _, s := range sent {
		id := msgID{s.Sender, s.MsgSeq}
		byID[id] = s
		switch rs := got[id]; len(rs) {
		case 1:
		case 0:
			return t.violation("each_once", fmtf("message %s no. %d sent to %q was never received", s.Sender, s.MsgSeq, object), s)
		default:
			return t.violation("each_once", fmtf("message %s no. %d sent to %q was received %d times", s.Sender, s.MsgSeq, object, len(rs)), append([]*Event{s}, rs...)...)
		}
	}
	for _, r := range recv {
		if byID[msgID{r.Sender, r.MsgSeq}] == nil {
			return t.violation("each_once", fmtf("%s received message %s no. %d from %q, which no recorded send put there", r.Name, r.Sender, r.MsgSeq, object), r)
		}
	}
	return nil
}

// FIFO checks that, per sender, messages left the object in the order
// they were sent: no message is received before (in happens-before: by the
// same receiver earlier, or by one whose receive is ordered before) an
// earlier message of the same sender.
func (t *Trace) FIFO(object string) *Violation {
	_, recv := t.messages(object)
	bySender := map[string][]*Event{}
	for _, r := range recv {
		bySender[r.Sender] = append(bySender[r.Sender], r)
	}
	senders := make([]string, 0, len(bySender))
	for s := range bySender {
		senders = append(senders, s)
	}
	sort.Strings(senders)
	for _, s := range senders {
		rs := bySender[s]
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].MsgSeq < rs[j].MsgSeq })
		// rs[i] (earlier message) must not be received after rs[j] (later
		// message) when the two receives are ordered. For one receiver
		// (program order) that is a scan for the running maximum; across
		// receivers it takes the pairs.
		for i := range rs {
			for j := i + 1; j < len(rs); j++ {
				if Before(rs[j], rs[i]) {
					return t.violation("fifo", fmtf("messages from %s left %q out of order: no. %d was received before no. %d", s, object, rs[j].MsgSeq, rs[i].MsgSeq), rs[j], rs[i])
				}
			}
		}
	}
	return nil
}
