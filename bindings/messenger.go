package bindings

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/internal/luatable"
	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

// Message passing. This file is the engine every message object shares
// (the messenger: send, receive, options); direct links (ipc.send /
// ipc.receive / ipc.link) are in link.go, the inboxes they deliver to
// (ipc.inbox) in inbox.go, mailboxes in mailbox.go, ipc.select in
// select.go, the received message's Lua table in msgtable.go, the body
// codec in codec.go.
//
// Every process has one inbox: an ipc.Queue that counts capacity per
// sender, so the link a->b (a's messages in b's inbox) has its own
// capacity, set by ipc.link and unbounded by default. The supervisor has
// one too, named "main": processes can send it results, which it receives
// after ipc.run() returns. The parent creates the inboxes just before the
// launch (an implicit object per process); a process maps another's inbox
// on its first send to it, and its own on its first receive.
//
// A message's header carries the sender's and the receiver's process slot
// (-1 = the supervisor) or, for a mailbox, the mailbox's declaration index,
// and seq, the sender's count of messages to that destination (1, 2, ...).

const (
	inboxKind  = "inbox"
	inboxClass = "ipc.inbox"
	linkKind   = "link"
	// parentSlot is the supervisor's index in message headers.
	parentSlot = -1
	// outsideSlot stands for a sender outside the run (a socket peer that
	// is no process of it: socket.go); it never goes on the wire.
	outsideSlot = -2
)

// messenger is one Lua state's message passing: its inbox, the inboxes it
// sends to, the codec and the buffers every send and receive reuse.
type messenger struct {
	env *Env
	enc *bodyEncoder
	dec *bodyDecoder
	out ipc.Message // reused by every send
	in  ipc.Message // reused by every receive

	inboxes   map[string]*inbox // by owner name, opened (child) or created (parent)
	lastTo    string            // peerInbox's last answer, and the name asked
	lastPeer  *inbox
	self      *inbox // this process's inbox, once opened
	byName    map[string]*Process
	known     int        // len(env.Procs) when byName was built
	names     []slotName // slot -> process name, boxed once
	links     []*linkDecl
	mailboxes map[string]*mailbox
	hooked    bool

	lastType  string // the last type received, boxed once
	lastTypeV lua.LValue
	tmpl      msgTemplate
	nums      numBoxes  // seq and time of received messages
	slots     slotCache // where the fields are in the table last received into
	src       srcCache  // the last src's name (srcName)
	opts      optsCache // the last {into = t} options table (intoOpts)

	sel selectState

	tbuf []byte // a traced send's clock and body

	passing passList // the descriptors of the body being sent (fdpass.go)
}

// lOutside is the src of a message from a program outside the run.
var lOutside = lua.LValue(lua.LString("outside"))

const messengerKey = "ipcscript.messenger"

// openMessaging adds send, receive, link, inbox, mailbox and select. The
// messenger lives in the Lua registry so that a second require (after
// package.loaded.ipc = nil) finds the same one.
func openMessaging(L *lua.LState, mod *lua.LTable, env *Env) {
	reg := L.Get(lua.RegistryIndex).(*lua.LTable)
	var m *messenger
	if ud, ok := reg.RawGetString(messengerKey).(*lua.LUserData); ok {
		m = ud.Value.(*messenger)
	} else {
		m = &messenger{env: env, inboxes: map[string]*inbox{}, mailboxes: map[string]*mailbox{}}
		ud := L.NewUserData()
		ud.Value = m
		reg.RawSetString(messengerKey, ud)
	}
	if env.Host.Role() == RoleChild {
		env.onForget = m.forget
	}
	if env.Host.Role() == RoleParent && !m.hooked {
		m.hooked = true
		env.BeforeLaunch = append(env.BeforeLaunch, m.createInboxes)
		env.OnSpawn = append(env.OnSpawn, m.spawned)
	}
	env.registerClass(L, inboxClass, map[string]lua.LGFunction{"receive": m.luaInboxReceive}, nil)
	env.setFunc(L, mod, "send", m.luaSend)
	env.setFunc(L, mod, "receive", m.luaReceive)
	env.setFunc(L, mod, "link", m.luaLink)
	env.setFunc(L, mod, "mailbox", m.luaMailbox)
	env.setFunc(L, mod, "select", m.luaSelect)
	mod.RawSetString("inbox", newUserData(L, inboxClass, &inboxRef{m}))
}

// encoder is the messenger's body encoder, made on first use (a process
// that sends nothing never needs it: ~4k instructions of each child's
// start, callgrind).
func (m *messenger) encoder() *bodyEncoder {
	if m.enc == nil {
		m.enc = newBodyEncoder()
		m.enc.open = m.env.OpenLazy
	}
	return m.enc
}

// decoder is the messenger's body decoder, made on first use, as encoder.
func (m *messenger) decoder() *bodyDecoder {
	if m.dec == nil {
		m.dec = newBodyDecoder()
		m.dec.files = m.passedObject
	}
	return m.dec
}

// mustRun raises unless message passing may happen here: in a process
// body, or in the supervisor after ipc.run() has returned.
func (m *messenger) mustRun(L *lua.LState, what string) {
	if !m.env.running {
		L.RaiseError("%s: messages are sent and received in process bodies, not at the top level (top-level code runs in every process); the supervisor may receive after ipc.run() returns", what)
	}
}

// afterRun is true in the supervisor once ipc.run() has returned: every
// process has exited, so a wait could never end.
func (m *messenger) afterRun() bool { return m.env.Host.Role() == RoleParent }

// selfSlot is this process's index in message headers.
func (m *messenger) selfSlot() int32 {
	if m.env.Self == nil {
		return parentSlot
	}
	return int32(m.env.Self.Slot)
}

// process finds a process instance by name: a declared one, or one
// spawned at run time (asked of the supervisor on first use).
func (m *messenger) process(name string) *Process {
	if m.byName == nil || m.known != len(m.env.Procs) {
		m.byName = make(map[string]*Process, len(m.env.Procs))
		for _, p := range m.env.Procs {
			m.byName[p.Name] = p
			if p.Count == 1 && p.SpawnArgs == nil && p.Group == p.Name {
				// A group of one is named like the group; "name.1" names
				// it too, as it would with any other count (names have no
				// dots, so this never clashes).
				m.byName[p.Name+".1"] = p
			}
		}
		m.known = len(m.env.Procs)
	}
	if p := m.byName[name]; p != nil || name == ParentName {
		return p
	}
	return m.env.lookupProcess(name, -1)
}

// procAt is the process in slot i that this process knows, or nil. A
// slot of a spawned process that ended is given to a later one: the one
// whose serial the status table shows is the slot's process now.
func (m *messenger) procAt(i int) *Process {
	want := uint32(0)
	if st := m.env.Status; st != nil && i < st.Len() {
		want = st.SerialOf(i)
	}
	if i < len(m.env.Procs) && m.env.Procs[i].Slot == i && (want == 0 || uint32(m.env.Procs[i].Serial) == want) {
		return m.env.Procs[i]
	}
	for j := len(m.env.Procs) - 1; j >= 0; j-- {
		if p := m.env.Procs[j]; p.Slot == i && (want == 0 || uint32(p.Serial) == want) {
			return p
		}
	}
	return nil
}

// unknownProcess explains a name that is no process instance.
func (m *messenger) unknownProcess(name string) string {
	var group []string
	var all []string
	for _, p := range m.env.Procs {
		if p.Group == name {
			group = append(group, p.Name)
		}
		if p.Index == 1 {
			all = append(all, p.Group)
		}
	}
	if len(group) > 0 {
		return fmt.Sprintf("%q is a group of %d processes: name one instance, %q .. %q", name, len(group), group[0], group[len(group)-1])
	}
	if t := m.env.Templates[name]; t != nil {
		return fmt.Sprintf("%q is a template: name an instance ipc.spawn returned", name)
	}
	if len(all) == 0 {
		return fmt.Sprintf("no process named %q: none is declared", name)
	}
	if len(all) > 12 {
		all = append(all[:12], "...")
	}
	return fmt.Sprintf("no process named %q (declared: %s)", name, strings.Join(all, ", "))
}

// slotOf returns the header index of the process named name ("main" for
// the supervisor) and its pid for the status table (0 when unknown).
func (m *messenger) slotOf(L *lua.LState, what, name string) (int32, int32) {
	if name == ParentName {
		return parentSlot, 0
	}
	p := m.process(name)
	if p == nil {
		L.RaiseError("%s: %s", what, m.unknownProcess(name))
	}
	return int32(p.Slot), m.pid(p)
}

func (m *messenger) pid(p *Process) int32 { return m.env.PidOf(p) }

// slotName is the name of a slot's process, cached with its serial.
type slotName struct {
	serial uint32
	v      lua.LValue
}

// nameOf is the Lua string naming header index i.
func (m *messenger) nameOf(i int32) lua.LValue {
	if i == parentSlot {
		return lMain
	}
	if i == outsideSlot {
		return lOutside
	}
	if i < 0 {
		return lua.LString(fmt.Sprintf("#%d", i))
	}
	serial := uint32(0)
	if st := m.env.Status; st != nil && int(i) < st.Len() {
		serial = st.SerialOf(int(i))
	}
	if int(i) < len(m.names) && m.names[i].v != nil && (serial == 0 || m.names[i].serial == serial) {
		return m.names[i].v
	}
	p := m.procAt(int(i))
	if p == nil {
		p = m.env.lookupProcess("", int(i)) // spawned after this process started
	}
	if p != nil {
		for int(i) >= len(m.names) {
			m.names = append(m.names, slotName{})
		}
		m.names[i] = slotName{serial: uint32(p.Serial), v: lua.LString(p.Name)}
		return m.names[i].v
	}
	return lua.LString(fmt.Sprintf("#%d", i))
}

// srcName is nameOf for a received message's src: the last src's name
// is kept with the serial word of its status-table slot, and is that
// name again while the slot's serial is unchanged (the process in the
// slot is the same one).
func (m *messenger) srcName(i int32) lua.LValue {
	if c := &m.src; c.ws != nil && i == c.slot && atomic.LoadUint32(&c.ws.Serial) == c.serial {
		return c.v
	}
	st := m.env.Status
	if st == nil || i < 0 || int(i) >= st.Len() {
		return m.nameOf(i)
	}
	// The serial is read first: if the slot changes hands before nameOf
	// reads it again, the name is the new process's and the next call
	// finds the serial changed and asks nameOf again.
	ws := st.Slot(int(i))
	serial := atomic.LoadUint32(&ws.Serial)
	v := m.nameOf(i)
	if int(i) < len(m.names) && sameBox(m.names[i].v, v) { // a process's name, not "#i"
		m.src = srcCache{slot: i, ws: ws, serial: serial, v: v}
	}
	return v
}

// srcCache is srcName's last answer.
type srcCache struct {
	slot   int32
	ws     *ipc.WaitStatus // the slot's status; nil: nothing cached
	serial uint32          // its serial word when v was found
	v      lua.LValue
}

// sendOptNames are the options sendOpts and sendOptsKeep read.
var sendOptNames = []string{"type", "timeout", "block", "keep"}

// sendOpts reads {type =, timeout =, block =} at n.
func sendOpts(L *lua.LState, n int) (string, ipc.WaitOpts) {
	typ, w, _ := sendOptsKeep(L, n)
	return typ, w
}

// sendOptsKeep reads {type =, timeout =, block =, keep =} at n; keep: a
// message's descriptors stay open in the sender too (fdpass.go).
func sendOptsKeep(L *lua.LState, n int) (string, ipc.WaitOpts, bool) {
	t := optTable(L, n)
	if t == nil {
		return "", ipc.WaitOpts{}, false
	}
	var v [4]lua.LValue
	optFields(t, sendOptNames, v[:])
	keep := boolValue(L, "keep", v[3], false)
	typ := stringValue(L, "type", v[0], "")
	if len(typ) > ipc.MaxTypeLen {
		L.RaiseError("a message type of %d bytes: at most %d", len(typ), ipc.MaxTypeLen)
	}
	return typ, waitOptsOf(L, v[1], v[2]), keep
}

// endedPeer is recvOpts's peer when from names a spawned process that
// ended and whose slot is another's now: the receive says "closed" (a slot
// is given away only once nothing its process sent is queued).
const endedPeer = -2

// recvOptNames are the options recvOpts reads, into first: a receive
// loop's options are most often {into = t} alone.
var recvOptNames = []string{"into", "from", "type", "timeout", "block"}

// recvOpts reads {from =, type =, timeout =, block =, into =} at n.
func (m *messenger) recvOpts(L *lua.LState, n int, what string) (ipc.Filter, int32, ipc.WaitOpts, *lua.LTable) {
	var f ipc.Filter
	t := optTable(L, n)
	if t == nil {
		return f, 0, ipc.WaitOpts{}, nil
	}
	if into := soleInto(t); into != nil {
		return f, 0, ipc.WaitOpts{}, into
	}
	var o [5]lua.LValue
	optFields(t, recvOptNames, o[:])
	var into *lua.LTable
	switch v := o[0].(type) {
	case *lua.LTable:
		into = v
	case *lua.LNilType:
	default:
		L.RaiseError("%s: into must be a table, got %s", what, typeName(v))
	}
	var peer int32
	switch v := o[1].(type) {
	case lua.LString:
		f.BySrc = true
		f.Src, peer = m.slotOf(L, what, string(v))
		if p := m.process(string(v)); p != nil && !m.env.current(p) {
			peer = endedPeer // its slot is another's: nothing of it is queued
		}
	case *lua.LNilType:
	default:
		L.RaiseError("%s: from must be a process name, got %s", what, typeName(v))
	}
	switch v := o[2].(type) {
	case lua.LString:
		f.ByType, f.Type = true, string(v)
	case *lua.LNilType:
	default:
		L.RaiseError("%s: type must be a string, got %s", what, typeName(v))
	}
	return f, peer, waitOptsOf(L, o[3], o[4]), into
}

// optsCache is the options table last found to be {into = t} alone
// (intoOpts), where its one key is: a receive loop passes the same table
// every time, whose group, control word and key (the same string: data
// and length) say it still holds that key alone, and only the value is
// read again.
type optsCache struct {
	t    *lua.LTable
	g    unsafe.Pointer // t's strdict's one group
	ctrl uint64
	slot unsafe.Pointer // the slot of its one key
	key  string         // that key, as it was stored
}

// intoOpts is soleInto for the value at an options argument: the table
// into when v is {into = into} and nothing else, nil otherwise.
func (m *messenger) intoOpts(v lua.LValue) *lua.LTable {
	t, ok := v.(*lua.LTable)
	if !ok {
		return nil
	}
	if c := &m.opts; t == c.t {
		mp := *(**swissMap)(unsafe.Pointer(&luatable.Of(t).Strdict))
		if mp != nil && mp.used == 1 && mp.dirLen == 0 && mp.dirPtr == c.g && *(*uint64)(c.g) == c.ctrl &&
			*(*[2]uintptr)(c.slot) == *(*[2]uintptr)(unsafe.Pointer(&c.key)) {
			if into, ok := (*(*lua.LValue)(unsafe.Add(c.slot, strElemOff))).(*lua.LTable); ok {
				return into
			}
		}
	}
	into := soleInto(t)
	if into != nil {
		mp := *(**swissMap)(unsafe.Pointer(&luatable.Of(t).Strdict))
		slot := slotAt(mp.dirPtr, fullSlots(mp.dirPtr))
		m.opts = optsCache{t: t, g: mp.dirPtr, ctrl: *(*uint64)(mp.dirPtr), slot: slot, key: *(*string)(slot)}
	}
	return into
}

// soleInto returns t.into when t is {into = a table} and nothing else, a
// receive loop's options: its one key read in place, without optFields'
// look-ups of the five names. nil otherwise (t may be nil).
func soleInto(t *lua.LTable) *lua.LTable {
	if t == nil || !msgTablesReady() {
		return nil
	}
	if k, v, ok := soleField(luatable.Of(t).Strdict); ok && k == "into" {
		if into, ok := v.(*lua.LTable); ok {
			return into
		}
	}
	return nil
}

// destination is where a send goes, as the sender sees it.
type destination struct {
	what string     // names the operation in errors: ipc.send to "b"
	q    *ipc.Queue // the receiver's inbox or the mailbox
	obj  int32      // status-table object id of q
	// peer is the process a blocked send waits on (nil = not one
	// process): its pid is looked up only if the send blocks.
	peer *Process
	dst  int32 // the header's dst: receiver's slot, or the mailbox's index
	// capacity is what the sender knows of the link: 0 = rendezvous (the
	// send waits for the take, so it is recorded as a wait at once).
	capacity int
	seq      *uint64 // the sender's count of messages sent here
	keep     bool    // {keep = true}: descriptors in the body stay open here too
	inbox    bool    // dst is a process's slot (a direct link), not a mailbox
}

// send encodes body and sends it to d. It returns nil or an outcome for
// Outcome; any other failure raises.
func (m *messenger) send(L *lua.LState, d destination, typ string, body lua.LValue, w ipc.WaitOpts) error {
	what, q, obj, seq := d.what, d.q, d.obj, d.seq
	holder := NoHolder
	if d.inbox {
		holder = int(d.dst)
	}
	b, passed, err := m.encodePassing(body, len(typ), holder)
	if err != nil {
		L.RaiseError("%s: %v", what, err)
	}
	out := &m.out
	out.Type, out.Src, out.Dst, out.Seq, out.Time, out.Body = typ, m.selfSlot(), d.dst, *seq+1, 0, b
	rec := m.env.Trace
	var t0 int64
	if rec != nil { // the clock travels in front of the body
		t0 = trace.Now()
		rec.Tick()
		m.tbuf = append(rec.AppendClock(m.tbuf[:0]), b...)
		out.Body, out.Flags = m.tbuf, trace.FlagClock
		// the receiver answers with its clock, in this process's
		// receipt slot: none for a spawned process beyond the board's
		// lanes (trace.SpawnLanes)
		if d.capacity == 0 && rec.Board().Carries(rec.P) {
			out.Flags |= trace.FlagReceipt
		}
	}
	ws := m.env.Slot
	if w.NonBlocking || d.capacity != 0 {
		// With room, a non-blocking send is the whole send; only a full
		// queue makes it wait (and then it is recorded as a wait).
		nb := w
		nb.NonBlocking = true
		if rec != nil { // the message's time is the traced send's start: one clock read for both
			out.Time = t0
		}
		err = q.Send(out, nb)
		out.Time = 0 // a send that waits for room stamps the time it finds it, as an untraced one does
		if err == ipc.ErrFull && !w.NonBlocking {
			if m.afterRun() {
				err = ipc.ErrClosed // every process has exited: no room will come
			} else {
				ws.Enter(ipc.OpSend, obj, m.pid(d.peer), w.Timeout > 0)
				err = q.Send(out, w)
				ws.Leave()
			}
		}
	} else {
		ws.Enter(ipc.OpSend, obj, m.pid(d.peer), w.Timeout > 0)
		err = q.Send(out, w)
		ws.Leave()
	}
	out.Body = nil
	if rec != nil {
		m.traceSend(L, rec, obj, typ, len(b), t0, err)
		if out.Flags&trace.FlagReceipt != 0 && err == nil {
			m.traceRendezvous(L, rec, obj)
		}
		out.Flags = 0
	}
	switch err {
	case nil:
		*seq++
		ws.Done()
		if !d.keep {
			passed.closePassed()
		}
		return nil
	case ipc.ErrFull, ipc.ErrTimeout, ipc.ErrClosed:
		return err
	}
	L.RaiseError("%s: %v", what, err)
	return nil
}

// sendString is send for a string body with no options to a queue that is
// not a rendezvous, traced or not: the body encoded (a string carries no
// descriptor; traced, the clock goes in front of it and the message's time
// is the send's start, one clock read for both), the message appended
// without waiting, and only when the queue is full, the same message sent
// again waiting for room (recorded as a wait, as send does), without
// send's general path. sent is false, having done nothing, when send must
// do it (descriptors listed to pass, a body too large); then err is nil.
// Else err is nil or an outcome (full in the supervisor after ipc.run:
// closed, as send says); any other failure raises, as in send.
func (m *messenger) sendString(L *lua.LState, what string, q *ipc.Queue, obj, dst int32, seq *uint64, s string) (sent bool, err error) {
	if len(m.passing.objs) != 0 || len(m.passing.files) != 0 {
		return false, nil
	}
	b, err := m.encoder().encodeString(s, 0)
	if err != nil {
		return false, nil
	}
	out := &m.out
	out.Type, out.Src, out.Dst, out.Seq, out.Time, out.Body = "", m.selfSlot(), dst, *seq+1, 0, b
	rec := m.env.Trace
	var t0 int64
	if rec != nil {
		t0 = trace.Now()
		rec.Tick()
		m.tbuf = append(rec.AppendClock(m.tbuf[:0]), b...)
		out.Body, out.Flags, out.Time = m.tbuf, trace.FlagClock, t0
	}
	err = q.Send(out, ipc.WaitOpts{NonBlocking: true})
	out.Time = 0 // a send that waits for room stamps the time it finds it, as an untraced one does
	if err == ipc.ErrFull {
		if m.afterRun() {
			err = ipc.ErrClosed // every process has exited: no room will come
		} else {
			ws := m.env.Slot
			ws.Enter(ipc.OpSend, obj, m.pid(nil), false)
			err = q.Send(out, ipc.WaitOpts{})
			ws.Leave()
		}
	}
	out.Body = nil
	if rec != nil {
		m.traceSend(L, rec, obj, "", len(b), t0, err)
		out.Flags = 0
	}
	switch err {
	case nil:
		*seq++
		m.env.Slot.Done()
		return true, nil
	case ipc.ErrFull, ipc.ErrTimeout, ipc.ErrClosed:
		return true, err
	}
	L.RaiseError("%s: %v", what, err)
	return true, nil
}

// traceSend emits a traced send (its clock went with the message).
func (m *messenger) traceSend(L *lua.LState, rec *trace.Recorder, obj int32, typ string, n int, t0 int64, err error) {
	kind, name := m.env.traceObject(obj)
	e := trace.MsgEvent{Op: trace.OpSend, Kind: kind, Object: name, Where: traceWhere(L), Time: t0, End: trace.Now(),
		Msg: trace.MsgID{Src: rec.P, Seq: rec.Seq()}, HasMsg: true, Type: typ, Len: int64(n), Outcome: outcomeOf(err)}
	if kind == "inbox" {
		e.Peer = name
	}
	rec.EmitMsg(&e)
}

// receiptWait bounds how long a rendezvous sender waits for the
// receiver's clock after its message was taken: the receiver leaves it
// right after the take, unless it died in between.
const receiptWait = time.Second

// traceRendezvous records that a rendezvous send returned because a
// receiver took the message: the event picks up the receiver's clock (the
// edge from the receive to the sender's return).
func (m *messenger) traceRendezvous(L *lua.LState, rec *trace.Recorder, obj int32) {
	id := &trace.MsgID{Src: rec.P, Seq: rec.Seq()}
	c, ok := rec.Board().AwaitReceipt(id.Seq, rec, time.Now().Add(receiptWait))
	if !ok {
		return
	}
	kind, name := m.env.traceObject(obj)
	rec.Record(&trace.Event{Op: trace.OpRendezvous, Kind: kind, Object: name, Where: traceWhere(L), Time: trace.Now(), Msg: id, Cause: &c})
}

// traceReceived strips the sender's clock from the message just received
// and, when this process records, merges it and emits the receive (op is
// "receive" or "select"). A process that does not record (the parent
// after ipc.run) only strips it.
func (m *messenger) traceReceived(L *lua.LState, op string, obj int32, t0 int64, err error) {
	m.traceMessage(L, &m.in, op, obj, t0, err)
}

// traceFrame is traceReceived for a message read from a connection.
func (m *messenger) traceFrame(L *lua.LState, in *ipc.Message, obj int32, t0 int64) {
	m.traceMessage(L, in, trace.OpReceive, obj, t0, nil)
}

func (m *messenger) traceMessage(L *lua.LState, in *ipc.Message, op string, obj int32, t0 int64, err error) {
	rec := m.env.Trace
	var cause trace.Ref
	hasCause := false
	if err == nil && in.Flags&trace.FlagClock != 0 {
		c, rest, cerr := rec.AcquireMessage(in.Body)
		if cerr == nil {
			n := copy(in.Body, rest) // in place: the buffer keeps its capacity
			in.Body = in.Body[:n]
			cause, hasCause = c, true
		}
		in.Flags &^= trace.FlagClock
	}
	receipt := in.Flags&trace.FlagReceipt != 0 && hasCause
	in.Flags &^= trace.FlagReceipt
	if rec == nil {
		return
	}
	kind, name := m.env.traceObject(obj)
	e := trace.MsgEvent{Op: op, Kind: kind, Object: name, Where: traceWhere(L), Time: t0, End: trace.Now(), Outcome: outcomeOf(err)}
	if err == nil {
		e.Msg, e.HasMsg = trace.MsgID{Src: int(in.Src), Seq: in.Seq}, true
		e.Type, e.Len = in.Type, int64(len(in.Body))
		if hasCause { // the sending event names the message
			e.Msg = trace.MsgID{Src: cause.P, Seq: cause.Seq}
		}
		if s, ok := m.srcName(in.Src).(lua.LString); ok {
			e.Peer = string(s)
		}
		if hasCause {
			e.Cause, e.HasCause = cause, true
		}
	}
	rec.Tick()
	if receipt && err == nil {
		rec.Board().Receipt(cause.P, cause.Seq, rec)
	}
	rec.EmitMsg(&e)
}

// pushSent pushes send's result.
func pushSent(L *lua.LState, err error) int {
	if err != nil {
		return Outcome(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}

// receive takes one message from q that f matches and pushes its table:
// into, filled, when it is not nil, else a new one.
func (m *messenger) receive(L *lua.LState, what string, q *ipc.Queue, obj, peer int32, f ipc.Filter, w ipc.WaitOpts, dst lua.LValue, into *lua.LTable) int {
	if peer == endedPeer {
		return Outcome(L, ipc.ErrClosed)
	}
	var t0 int64
	if m.env.Trace != nil {
		t0 = trace.Now()
	}
	err := q.Receive(f, ipc.WaitOpts{NonBlocking: true}, &m.in)
	return m.received(L, what, q, obj, peer, f, w, dst, into, t0, err)
}

// received is receive after its first, non-blocking, try: err is that
// try's outcome.
func (m *messenger) received(L *lua.LState, what string, q *ipc.Queue, obj, peer int32, f ipc.Filter, w ipc.WaitOpts, dst lua.LValue, into *lua.LTable, t0 int64, err error) int {
	if err == ipc.ErrEmpty && !w.NonBlocking {
		if m.afterRun() {
			err = ipc.ErrClosed // every process has exited: nothing more will come
		} else {
			ws := m.env.Slot
			ws.Enter(ipc.OpReceive, obj, peer, w.Timeout > 0)
			err = q.Receive(f, w, &m.in)
			ws.Leave()
		}
	}
	if m.env.Trace != nil || m.in.Flags != 0 {
		m.traceReceived(L, trace.OpReceive, obj, t0, err)
	}
	if err != nil {
		return Outcome(L, err)
	}
	m.env.Slot.Done()
	if into != nil {
		if err := m.fillMessageTable(L, into, &m.in, dst); err != nil {
			L.RaiseError("%s: %v", what, err)
		}
		L.Push(into)
		return 1
	}
	t, err := m.messageTable(L, &m.in, dst)
	if err != nil {
		L.RaiseError("%s: %v", what, err)
	}
	L.Push(t)
	return 1
}

// receiveInto is receive with the options {into = into} alone (a receive
// loop's), which need not be read: no filter, blocking, no deadline. A
// message taken at once, untraced, goes into into's slots as the last one
// did (fillInPlace); anything else takes receive's path.
func (m *messenger) receiveInto(L *lua.LState, what string, q *ipc.Queue, obj int32, dst lua.LValue, into *lua.LTable) int {
	if m.env.Trace != nil {
		return m.receiveIntoTraced(L, what, q, obj, dst, into)
	}
	err := q.Receive(ipc.Filter{}, ipc.WaitOpts{NonBlocking: true}, &m.in)
	if err != nil || m.in.Flags != 0 || !m.fillInPlace(L, what, into, &m.in, dst) {
		return m.received(L, what, q, obj, 0, ipc.Filter{}, ipc.WaitOpts{}, dst, into, 0, err)
	}
	m.env.Slot.Done()
	L.Push(into)
	return 1
}

// receiveIntoTraced is receiveInto in a traced run: a message taken at
// once is recorded as received records it, then goes into into's slots
// as receiveInto's does; anything else takes received's path.
func (m *messenger) receiveIntoTraced(L *lua.LState, what string, q *ipc.Queue, obj int32, dst lua.LValue, into *lua.LTable) int {
	t0 := trace.Now()
	err := q.Receive(ipc.Filter{}, ipc.WaitOpts{NonBlocking: true}, &m.in)
	if err != nil {
		return m.received(L, what, q, obj, 0, ipc.Filter{}, ipc.WaitOpts{}, dst, into, t0, err)
	}
	m.traceReceived(L, trace.OpReceive, obj, t0, nil)
	m.env.Slot.Done()
	if m.in.Flags != 0 || !m.fillInPlace(L, what, into, &m.in, dst) {
		if err := m.fillMessageTable(L, into, &m.in, dst); err != nil {
			L.RaiseError("%s: %v", what, err)
		}
	}
	L.Push(into)
	return 1
}

// take receives one message without waiting, for select: ok is false when
// nothing is queued; err is ipc.ErrClosed when q is closed and drained.
func (m *messenger) take(L *lua.LState, what string, q *ipc.Queue, dst lua.LValue) (lua.LValue, bool, error) {
	switch err := q.Receive(ipc.Filter{}, ipc.WaitOpts{NonBlocking: true}, &m.in); err {
	case nil:
	case ipc.ErrEmpty:
		return nil, false, nil
	default:
		return nil, false, err
	}
	if m.env.Trace != nil || m.in.Flags != 0 {
		m.traceReceived(L, trace.OpSelect, m.sel.takeObj, m.sel.t0, nil)
	}
	m.env.Slot.Done()
	t, err := m.messageTable(L, &m.in, dst)
	if err != nil {
		L.RaiseError("%s: %v", what, err)
	}
	return t, true, nil
}
