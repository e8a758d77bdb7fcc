package check

import (
	"sort"

	"github.com/ipcscript/ipcscript/trace"
)

// isReceive says whether e took a message out of an object (a receive, or
// a select that received).
func isReceive(e *Event) bool {
	return e.Msg != nil && (e.Op == trace.OpReceive || e.Op == trace.OpSelect)
}

// messages returns the messages that went into and came out of the
// object; sends and receives that did not happen ("full", "timeout",
// "empty", "closed") are left out.
func (t *Trace) messages(object string) (sent, recv []*Event, tried bool) {
	for _, e := range t.Events {
		if e.Object != object {
			continue
		}
		tried = tried || e.Op == trace.OpSend || e.Op == trace.OpReceive || e.Op == trace.OpSelect
		if e.Outcome != "" || e.Msg == nil {
			continue
		}
		switch {
		case e.Op == trace.OpSend:
			sent = append(sent, e)
		case isReceive(e):
			recv = append(recv, e)
		}
	}
	return sent, recv, tried
}

// msgName is "producer no. 3".
func (t *Trace) msgName(id trace.MsgID) string {
	return fmtf("%s no. %d", t.procName(id.Src), id.Seq)
}

// EachOnce checks that every message sent to the object was received
// exactly once, and that nothing was received that was not sent there.
func (t *Trace) EachOnce(object string) *Violation {
	sent, recv, tried := t.messages(object)
	if !tried {
		return t.nothing("each_once", fmtf("no message sent to or received from %q", object))
	}
	got := map[trace.MsgID][]*Event{}
	for _, r := range recv {
		got[*r.Msg] = append(got[*r.Msg], r)
	}
	byID := map[trace.MsgID]*Event{}
	for _, s := range sent {
		byID[*s.Msg] = s
		switch rs := got[*s.Msg]; len(rs) {
		case 1:
		case 0:
			return t.violation("each_once", fmtf("message %s sent to %q was never received", t.msgName(*s.Msg), object), s)
		default:
			return t.violation("each_once", fmtf("message %s sent to %q was received %d times", t.msgName(*s.Msg), object, len(rs)), append([]*Event{s}, rs...)...)
		}
	}
	for _, r := range recv {
		if byID[*r.Msg] == nil {
			return t.violation("each_once", fmtf("%s received message %s from %q, which no recorded send put there", r.Proc, t.msgName(*r.Msg), object), r)
		}
	}
	return nil
}

// FIFO checks that, per sender, messages left the object in the order
// they were sent: no message is received before (in happens-before: by the
// same receiver earlier, or by one whose receive is ordered before) an
// earlier message of the same sender.
func (t *Trace) FIFO(object string) *Violation {
	_, recv, tried := t.messages(object)
	if !tried {
		return t.nothing("fifo", fmtf("no message sent to or received from %q", object))
	}
	bySender := map[int][]*Event{}
	for _, r := range recv {
		bySender[r.Msg.Src] = append(bySender[r.Msg.Src], r)
	}
	senders := make([]int, 0, len(bySender))
	for s := range bySender {
		senders = append(senders, s)
	}
	sort.Ints(senders)
	for _, s := range senders {
		rs := bySender[s]
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Msg.Seq < rs[j].Msg.Seq })
		for i := range rs {
			for j := i + 1; j < len(rs); j++ {
				if Before(rs[j], rs[i]) {
					return t.violation("fifo", fmtf("messages from %s left %q out of order: no. %d was received before no. %d", t.procName(s), object, rs[j].Msg.Seq, rs[i].Msg.Seq), rs[j], rs[i])
				}
			}
		}
	}
	return nil
}
