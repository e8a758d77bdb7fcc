package bindings

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

// Message passing: direct links (ipc.send / ipc.receive / ipc.link /
// ipc.inbox) here, mailboxes in mailbox.go, ipc.select in select.go, the
// body codec in codec.go.
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

func init() { registerKind(openMessaging) }

// messenger is one Lua state's message passing: its inbox, the inboxes it
// sends to, the codec and the buffers every send and receive reuse.
type messenger struct {
	env *Env
	enc *bodyEncoder
	dec *bodyDecoder
	out ipc.Message // reused by every send
	in  ipc.Message // reused by every receive

	inboxes   map[string]*inbox // by owner name, opened (child) or created (parent)
	self      *inbox            // this process's inbox, once opened
	byName    map[string]*Process
	names     []lua.LValue // slot -> process name, boxed once
	links     []*linkDecl
	mailboxes map[string]*mailbox
	hooked    bool

	lastType  string // the last type received, boxed once
	lastTypeV lua.LValue
	tmpl      msgTemplate

	sel selectState

	tbuf []byte // a traced send's clock and body
}

// linkDecl is one ipc.link declaration.
type linkDecl struct {
	from, to string // instance or group names
	capacity int    // ipc.Unbounded, 0 or n
	line     string
}

// inbox is one process's inbox. In the parent it is also the implicit
// declaration's Object, so the runtime tells it about exits and deaths.
type inbox struct {
	owner    string   // process name, or "main"
	proc     *Process // the owner; nil for "main"
	slot     int32    // owner's slot, parentSlot for "main"
	q        *ipc.Queue
	obj      int32  // status-table object id: the implicit declaration's index
	what     string // inbox of "b"
	nameV    lua.LValue
	sendWhat string // ipc.send to "b"
	seq      uint64 // messages this process has sent here
	// capacity of the link from this process to the owner (a sender's view).
	capacity int
}

var lMain = lua.LValue(lua.LString(ParentName))

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
		m = &messenger{env: env, enc: newBodyEncoder(), dec: newBodyDecoder(),
			inboxes: map[string]*inbox{}, mailboxes: map[string]*mailbox{}}
		ud := L.NewUserData()
		ud.Value = m
		reg.RawSetString(messengerKey, ud)
	}
	if env.Mode == ModeParent && !m.hooked {
		m.hooked = true
		env.BeforeLaunch = append(env.BeforeLaunch, m.createInboxes)
	}
	registerClass(L, inboxClass, map[string]lua.LGFunction{"receive": m.luaInboxReceive}, nil)
	L.SetFuncs(mod, map[string]lua.LGFunction{
		"send":    m.luaSend,
		"receive": m.luaReceive,
		"link":    m.luaLink,
		"mailbox": m.luaMailbox,
		"select":  m.luaSelect,
	})
	mod.RawSetString("inbox", newUserData(L, inboxClass, &inboxRef{m}))
}

// inboxRef is ipc.inbox: this process's inbox, whoever it turns out to be.
type inboxRef struct{ m *messenger }

func (r *inboxRef) String() string { return "inbox of " + fmt.Sprintf("%q", r.m.env.SelfName()) }

// mustRun raises unless message passing may happen here: in a process
// body, or in the supervisor after ipc.run() has returned.
func (m *messenger) mustRun(L *lua.LState, what string) {
	if !m.env.running {
		L.RaiseError("%s: messages are sent and received in process bodies, not at the top level (top-level code runs in every process); the supervisor may receive after ipc.run() returns", what)
	}
}

// afterRun is true in the supervisor once ipc.run() has returned: every
// process has exited, so a wait could never end.
func (m *messenger) afterRun() bool { return m.env.Mode == ModeParent }

// selfSlot is this process's index in message headers.
func (m *messenger) selfSlot() int32 {
	if m.env.Self == nil {
		return parentSlot
	}
	return int32(m.env.Self.Slot)
}

// process finds a process instance by name (declarations are over when
// this is first called).
func (m *messenger) process(name string) *Process {
	if m.byName == nil {
		m.byName = make(map[string]*Process, len(m.env.Procs))
		for _, p := range m.env.Procs {
			m.byName[p.Name] = p
			if p.Count == 1 {
				// A group of one is named like the group; "name.1" names
				// it too, as it would with any other count (names have no
				// dots, so this never clashes).
				m.byName[p.Name+".1"] = p
			}
		}
	}
	return m.byName[name]
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

// nameOf is the Lua string naming header index i.
func (m *messenger) nameOf(i int32) lua.LValue {
	if i == parentSlot {
		return lMain
	}
	if i == outsideSlot {
		return lOutside
	}
	if m.names == nil {
		m.names = make([]lua.LValue, len(m.env.Procs))
		for j, p := range m.env.Procs {
			m.names[j] = lua.LString(p.Name)
		}
	}
	if i >= 0 && int(i) < len(m.names) {
		return m.names[i]
	}
	return lua.LString(fmt.Sprintf("#%d", i))
}

// typeValue boxes a received type once per change of type.
func (m *messenger) typeValue(t string) lua.LValue {
	if t == "" {
		return lua.LNil
	}
	if t != m.lastType || m.lastTypeV == nil {
		m.lastType, m.lastTypeV = t, lua.LString(t)
	}
	return m.lastTypeV
}

// messageTable turns the message just received into its Lua table:
// {type=, body=, src=, dst=, len=, seq=, time=}.
func (m *messenger) messageTable(L *lua.LState, msg *ipc.Message, dst lua.LValue) (*lua.LTable, error) {
	body, err := m.dec.decode(L, msg.Body)
	// len is the body's size in bytes as the script sees it: a string's
	// length (#body), else the size of its encoding.
	n := len(msg.Body)
	if s, ok := body.(lua.LString); ok {
		n = len(s)
	}
	if cap(msg.Body) > 1<<20 {
		msg.Body = nil // a one-off large message is not kept
	}
	if err != nil {
		return nil, fmt.Errorf("message from %s: %w", m.nameOf(msg.Src), err)
	}
	return m.tmpl.newMessageTable(&[msgFields]lua.LValue{
		m.typeValue(msg.Type),
		body,
		m.nameOf(msg.Src),
		dst,
		boxInt(n),
		boxInt(msg.Seq),
		lua.LNumber(float64(msg.Time) / 1e9),
	}), nil
}

// fillMessageTable sets the fields of the message just received in t, a
// table the script owns ({into = t}): the same fields messageTable
// builds, the absent ones set to nil. Once t has had every field, refilling
// it allocates nothing, so a loop receiving into one table makes no
// per-message garbage beyond the values themselves (a new string body,
// numbers that need a box).
func (m *messenger) fillMessageTable(L *lua.LState, t *lua.LTable, msg *ipc.Message, dst lua.LValue) error {
	body, err := m.dec.decode(L, msg.Body)
	if cap(msg.Body) > 1<<20 {
		msg.Body = nil // a one-off large message is not kept
	}
	if err != nil {
		return fmt.Errorf("message from %s: %w", m.nameOf(msg.Src), err)
	}
	v := [msgFields]lua.LValue{
		m.typeValue(msg.Type),
		body,
		m.nameOf(msg.Src),
		dst,
		boxInt(len(msg.Body)),
		boxInt(msg.Seq),
		lua.LNumber(float64(msg.Time) / 1e9),
	}
	for i, k := range msgKeyNames {
		t.RawSetString(k, v[i])
	}
	return nil
}

// sendOpts reads {type =, timeout =, block =} at n.
func sendOpts(L *lua.LState, n int) (string, ipc.WaitOpts) {
	t := optTable(L, n)
	if t == nil {
		return "", ipc.WaitOpts{}
	}
	typ := optString(L, t, "type", "")
	if len(typ) > ipc.MaxTypeLen {
		L.RaiseError("a message type of %d bytes: at most %d", len(typ), ipc.MaxTypeLen)
	}
	return typ, waitOptsFrom(L, t)
}

// recvOpts reads {from =, type =, timeout =, block =, into =} at n.
func (m *messenger) recvOpts(L *lua.LState, n int, what string) (ipc.Filter, int32, ipc.WaitOpts, *lua.LTable) {
	var f ipc.Filter
	t := optTable(L, n)
	if t == nil {
		return f, 0, ipc.WaitOpts{}, nil
	}
	var into *lua.LTable
	switch v := t.RawGetString("into").(type) {
	case *lua.LTable:
		into = v
	case *lua.LNilType:
	default:
		L.RaiseError("%s: into must be a table, got %s", what, typeName(v))
	}
	var peer int32
	switch v := t.RawGetString("from").(type) {
	case lua.LString:
		f.BySrc = true
		f.Src, peer = m.slotOf(L, what, string(v))
	case *lua.LNilType:
	default:
		L.RaiseError("%s: from must be a process name, got %s", what, typeName(v))
	}
	switch v := t.RawGetString("type").(type) {
	case lua.LString:
		f.ByType, f.Type = true, string(v)
	case *lua.LNilType:
	default:
		L.RaiseError("%s: type must be a string, got %s", what, typeName(v))
	}
	return f, peer, waitOptsFrom(L, t), into
}

// send encodes body and sends it on q. capacity is what the sender knows
// of the link (0 = rendezvous: the send waits for the take, so it is
// recorded as a wait at once); peer is the pid the wait depends on. It
// returns nil or an outcome for Outcome; any other failure raises.
func (m *messenger) send(L *lua.LState, what string, q *ipc.Queue, obj, peer, dst int32, capacity int, seq *uint64, typ string, body lua.LValue, w ipc.WaitOpts) error {
	b, err := m.enc.encode(body, len(typ))
	if err != nil {
		L.RaiseError("%s: %v", what, err)
	}
	out := &m.out
	out.Type, out.Src, out.Dst, out.Seq, out.Time, out.Body = typ, m.selfSlot(), dst, *seq+1, 0, b
	rec := m.env.Trace
	var t0 int64
	if rec != nil { // the clock travels in front of the body
		t0 = trace.Now()
		rec.Tick()
		m.tbuf = append(rec.AppendClock(m.tbuf[:0]), b...)
		out.Body, out.Flags = m.tbuf, trace.FlagClock
	}
	ws := m.env.Slot
	if w.NonBlocking || capacity != 0 {
		// With room, a non-blocking send is the whole send; only a full
		// queue makes it wait (and then it is recorded as a wait).
		nb := w
		nb.NonBlocking = true
		err = q.Send(out, nb)
		if err == ipc.ErrFull && !w.NonBlocking {
			if m.afterRun() {
				err = ipc.ErrClosed // every process has exited: no room will come
			} else {
				ws.Enter(ipc.OpSend, obj, peer, w.Timeout > 0)
				err = q.Send(out, w)
				ws.Leave()
			}
		}
	} else {
		ws.Enter(ipc.OpSend, obj, peer, w.Timeout > 0)
		err = q.Send(out, w)
		ws.Leave()
	}
	out.Body = nil
	if rec != nil {
		m.traceSend(L, rec, obj, typ, len(b), t0, err)
		out.Flags = 0
	}
	switch err {
	case nil:
		*seq++
		ws.Done()
		return nil
	case ipc.ErrFull, ipc.ErrTimeout, ipc.ErrClosed:
		return err
	}
	L.RaiseError("%s: %v", what, err)
	return nil
}

// traceSend emits a traced send (its clock went with the message).
func (m *messenger) traceSend(L *lua.LState, rec *trace.Recorder, obj int32, typ string, n int, t0 int64, err error) {
	kind, name := m.env.traceObject(obj)
	e := trace.Event{Op: trace.OpSend, Kind: kind, Object: name, Where: traceWhere(L), Time: t0, End: trace.Now(),
		Msg: &trace.MsgID{Src: rec.P, Seq: rec.Seq()}, Type: typ, Len: int64(n), Outcome: outcomeOf(err)}
	if kind == "inbox" {
		e.Peer = name
	}
	rec.Emit(&e)
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
	if rec == nil {
		return
	}
	kind, name := m.env.traceObject(obj)
	e := trace.Event{Op: op, Kind: kind, Object: name, Where: traceWhere(L), Time: t0, End: trace.Now(), Outcome: outcomeOf(err)}
	if err == nil {
		e.Msg = &trace.MsgID{Src: int(in.Src), Seq: in.Seq}
		e.Type, e.Len = in.Type, int64(len(in.Body))
		if hasCause { // the sending event names the message
			e.Msg = &trace.MsgID{Src: cause.P, Seq: cause.Seq}
		}
		if s, ok := m.nameOf(in.Src).(lua.LString); ok {
			e.Peer = string(s)
		}
		if hasCause {
			e.Cause = &cause
		}
	}
	rec.Record(&e)
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
	var t0 int64
	if m.env.Trace != nil {
		t0 = trace.Now()
	}
	err := q.Receive(f, ipc.WaitOpts{NonBlocking: true}, &m.in)
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

// ipc.send(to, body, [{type =, timeout =, block =}]) -> true | nil, err
// err: "full" (block = false, or a rendezvous no receiver took at once),
// "timeout", "closed" (the receiver has exited).
func (m *messenger) luaSend(L *lua.LState) int {
	to := L.CheckString(1)
	m.mustRun(L, "ipc.send")
	ib := m.peerInbox(L, to)
	typ, w := sendOpts(L, 3)
	return pushSent(L, m.send(L, ib.sendWhat, ib.q, ib.obj, m.pid(ib.proc), ib.slot, ib.capacity, &ib.seq, typ, L.Get(2), w))
}

// ipc.receive([{from =, type =, timeout =, block =}]) -> message | nil, err
// err: "empty" (block = false), "timeout", "closed" (from names a process
// that has exited and left nothing queued).
func (m *messenger) luaReceive(L *lua.LState) int {
	m.mustRun(L, "ipc.receive")
	f, peer, w, into := m.recvOpts(L, 1, "ipc.receive")
	ib := m.ownInbox(L, "ipc.receive")
	return m.receive(L, "ipc.receive", ib.q, ib.obj, peer, f, w, ib.nameV, into)
}

// ipc.inbox:receive([opts]): the same as ipc.receive(opts).
func (m *messenger) luaInboxReceive(L *lua.LState) int {
	checkClass[*inboxRef](L, 1, "ipc.inbox")
	m.mustRun(L, "ipc.inbox:receive")
	f, peer, w, into := m.recvOpts(L, 2, "ipc.inbox:receive")
	ib := m.ownInbox(L, "ipc.inbox:receive")
	return m.receive(L, "ipc.inbox:receive", ib.q, ib.obj, peer, f, w, ib.nameV, into)
}

func (r *inboxRef) selectPrepare(L *lua.LState) { r.m.ownInbox(L, "ipc.select") }
func (r *inboxRef) selectQueue() *ipc.Queue     { return r.m.self.q }
func (r *inboxRef) selectObj() int32            { return r.m.self.obj }
func (r *inboxRef) selectTake(L *lua.LState) (lua.LValue, bool, error) {
	return r.m.take(L, "ipc.select", r.m.self.q, r.m.self.nameV)
}

// ipc.link(a, b, [{capacity = n}]): the capacity of the direct link a -> b
// (a's messages queued in b's inbox). a and b are process or group names;
// a group means each of its instances. Without a link, or without
// capacity, a link is unbounded. When several declarations match a pair,
// the last one wins.
func (m *messenger) luaLink(L *lua.LState) int {
	a, b := L.CheckString(1), L.CheckString(2)
	opts := optTable(L, 3)
	capacity := ipc.Unbounded
	if opts != nil && opts.RawGetString("capacity") != lua.LNil {
		capacity = optInt(L, opts, "capacity", 0)
		if capacity < 0 {
			L.RaiseError("ipc.link(%q, %q): capacity must be >= 0 (0 = rendezvous), got %d; leave it out for an unbounded link", a, b, capacity)
		}
	}
	for _, s := range []string{a, b} {
		if s == ParentName {
			L.RaiseError("ipc.link(%q, %q): links to and from the supervisor are always unbounded", a, b)
		}
	}
	spec := "capacity=unbounded"
	if capacity != ipc.Unbounded {
		spec = fmt.Sprintf("capacity=%d", capacity)
	}
	d := m.env.Declare(L, linkKind, a+"->"+b, spec)
	for _, l := range m.links {
		if l.from == a && l.to == b {
			L.RaiseError("link %s -> %s is declared twice (first at %s)", a, b, l.line)
		}
	}
	m.links = append(m.links, &linkDecl{from: a, to: b, capacity: capacity, line: d.Line})
	return 0
}

// linkCapacity is the capacity of the link from sender to receiver.
func (m *messenger) linkCapacity(sender, receiver *Process) int {
	c := ipc.Unbounded
	if sender == nil || receiver == nil {
		return c
	}
	for _, l := range m.links {
		if (l.from == sender.Name || l.from == sender.Group) && (l.to == receiver.Name || l.to == receiver.Group) {
			c = l.capacity
		}
	}
	return c
}

// createInboxes is the parent's BeforeLaunch hook: one inbox per process
// that runs a Lua body, and the supervisor's.
func (m *messenger) createInboxes(e *Env) error {
	if len(e.Procs) == 0 {
		return nil
	}
	for _, l := range m.links {
		for _, n := range []string{l.from, l.to} {
			if !m.isProcessOrGroup(n) {
				return fmt.Errorf("link %s -> %s at %s: no process or group named %q", l.from, l.to, l.line, n)
			}
		}
	}
	owners := append([]*Process{nil}, e.Procs...) // nil: the supervisor
	for _, p := range owners {
		if p != nil && p.Exec != nil {
			continue // an external program has no inbox
		}
		name := ParentName
		var caps []int // the capacity of the link from each process
		if p != nil {
			name = p.Name
			caps = make([]int, len(e.Procs))
			for i, s := range e.Procs {
				caps[i] = m.linkCapacity(s, p)
			}
		}
		d := e.AddImplicit(inboxKind, name)
		ib := newInbox(name, p, d, ipc.Unbounded) // the supervisor's links are unbounded
		q, err := ipc.NewQueue(ipc.QueueConfig{Name: ib.what, Capacity: ipc.Unbounded, PerSender: true, SenderCapacity: caps})
		if err != nil {
			m.releaseInboxes()
			return err
		}
		ib.q = q
		d.AddFile("mem", q.File(), "")
		d.Object = ib
		m.inboxes[name] = ib
	}
	return nil
}

func (m *messenger) releaseInboxes() {
	for name, ib := range m.inboxes {
		ib.Release()
		delete(m.inboxes, name)
	}
}

func (m *messenger) isProcessOrGroup(name string) bool {
	for _, p := range m.env.Procs {
		if p.Name == name || p.Group == name {
			return true
		}
	}
	return false
}

// peerInbox returns the inbox of the process named to, mapping it on
// first use.
func (m *messenger) peerInbox(L *lua.LState, to string) *inbox {
	if ib := m.inboxes[to]; ib != nil && ib.q != nil {
		return ib
	}
	var p *Process
	if to != ParentName {
		if p = m.process(to); p == nil {
			L.RaiseError("ipc.send: %s", m.unknownProcess(to))
		}
		if p.Exec != nil {
			L.RaiseError("ipc.send: process %q runs an external program (%s): it has no inbox; give it a pipe", p.Name, p.Exec[0])
		}
		to = p.Name
	}
	if ib := m.inboxes[to]; ib != nil && ib.q != nil {
		return ib
	}
	return m.openInbox(L, "ipc.send", to, p)
}

// ownInbox returns this process's inbox, mapping it on first use.
func (m *messenger) ownInbox(L *lua.LState, what string) *inbox {
	if m.self != nil {
		return m.self
	}
	name := m.env.SelfName()
	if m.env.Self != nil && m.env.Self.Exec != nil {
		L.RaiseError("%s: process %q has no inbox", what, name)
	}
	m.self = m.openInbox(L, what, name, m.env.Self)
	return m.self
}

// openInbox finds the inbox of owner: created by the parent, mapped from
// the inherited descriptor in a child.
func (m *messenger) openInbox(L *lua.LState, what, owner string, p *Process) *inbox {
	if ib := m.inboxes[owner]; ib != nil && ib.q != nil {
		return ib
	}
	if m.env.Mode != ModeChild {
		L.RaiseError("%s: inbox of %q: no inboxes exist (ipc.run() has not launched any process)", what, owner)
	}
	d := m.env.ImplicitDecl(inboxKind, owner)
	if d == nil || d.File("mem") == nil {
		L.RaiseError("%s: inbox of %q: this process did not inherit it", what, owner)
	}
	ib := newInbox(owner, p, d, m.linkCapacity(m.env.Self, p))
	q, err := ipc.OpenQueue(d.File("mem"), ipc.QueueConfig{Name: ib.what})
	if err != nil {
		L.RaiseError("%s: %v", what, err)
	}
	ib.q = q
	m.inboxes[owner] = ib
	return ib
}

// newInbox describes the inbox of owner (p; nil for the supervisor),
// declared as d, as seen by a sender whose link to it has capacity.
func newInbox(owner string, p *Process, d *Decl, capacity int) *inbox {
	ib := &inbox{owner: owner, proc: p, slot: parentSlot, obj: int32(d.Index), capacity: capacity,
		what: fmt.Sprintf("inbox of %q", owner), sendWhat: fmt.Sprintf("ipc.send to %q", owner), nameV: lua.LString(owner)}
	if p != nil {
		ib.slot = int32(p.Slot)
	}
	return ib
}

// ProcessExited: the owner's exit closes its inbox (senders get
// "closed"); another's exit releases receives waiting on it alone.
func (ib *inbox) ProcessExited(p *Process) {
	if ib.q == nil {
		return
	}
	if p.Name == ib.owner {
		ib.q.Close()
		return
	}
	ib.q.SenderGone(int32(p.Slot))
}

// Recover repairs the inbox when pid died holding its lock.
func (ib *inbox) Recover(pid int) {
	if ib.q != nil {
		ib.q.Recover(pid)
	}
}

// Release unmaps the parent's view at the end of the run.
func (ib *inbox) Release() {
	if ib.q != nil {
		ib.q.Unmap()
		ib.q = nil
	}
}

// A received message is a table with seven string keys, built for every
// message: it is the receive path's main cost. gopher-lua's RawSetString
// keeps, besides the map of values, a list of keys and a key -> position
// map for pairs(), both grown one key at a time (a dozen allocations per
// table). newMessageTable builds the same three structures at once: the
// key list is shared by every message table (full to capacity, so a key a
// script adds makes a table its own copy), the position map is cloned from
// a template. It needs gopher-lua's LTable layout, which is checked when
// the package starts; on any difference the plain RawSetString path is
// used.

const msgFields = 7

var (
	msgKeyNames = [msgFields]string{"type", "body", "src", "dst", "len", "seq", "time"}
	msgKeys     []lua.LValue       // msgKeyNames boxed, len == cap
	msgKeyPos   map[lua.LValue]int // key -> index in msgKeys
	// msgStrTemplate has every key (with a placeholder value): each
	// message's strdict starts as a clone of it. Never written.
	msgStrTemplate map[string]lua.LValue
	fastTables     = tableLayoutMatches()
)

func init() {
	msgKeys = make([]lua.LValue, msgFields)
	msgKeyPos = make(map[lua.LValue]int, msgFields)
	msgStrTemplate = make(map[string]lua.LValue, msgFields)
	for i, k := range msgKeyNames {
		msgKeys[i] = lua.LString(k)
		msgKeyPos[msgKeys[i]] = i
		msgStrTemplate[k] = lua.LTrue
	}
}

// ltable mirrors lua.LTable (gopher-lua v1.1.x).
type ltable struct {
	Metatable lua.LValue
	array     []lua.LValue
	dict      map[lua.LValue]lua.LValue
	strdict   map[string]lua.LValue
	keys      []lua.LValue
	k2i       map[lua.LValue]int
}

// tableLayoutMatches reports whether lua.LTable is laid out as ltable:
// the same field names, types and offsets.
func tableLayoutMatches() bool {
	got, want := reflect.TypeFor[lua.LTable](), reflect.TypeFor[ltable]()
	if got.Size() != want.Size() || got.NumField() != want.NumField() {
		return false
	}
	for i := range got.NumField() {
		g, w := got.Field(i), want.Field(i)
		if g.Name != w.Name || g.Type != w.Type || g.Offset != w.Offset {
			return false
		}
	}
	return true
}

// msgTemplate serves a stream of messages whose type, src, dst and len
// repeat (one sender, one type, one size): it holds a strdict with those
// four fields and placeholders for body, seq and time, so that a message's
// strdict is its clone with three values set instead of seven. It is built
// when two messages in a row agree on the four and differ from it, and is
// never written once built: tables get clones. The zero value is ready.
type msgTemplate struct {
	key, last [4]lua.LValue // the template's four values; the last message's
	strdict   map[string]lua.LValue
}

// The fields a template fixes, and those set in each clone.
var (
	msgFixed    = [4]int{0, 2, 3, 4} // type, src, dst, len
	msgVariable = [3]int{1, 5, 6}    // body, seq, time
)

// base returns the template's strdict for v's message, nil when there is
// none for it.
func (tm *msgTemplate) base(v *[msgFields]lua.LValue) map[string]lua.LValue {
	var fixed [4]lua.LValue
	for i, f := range msgFixed {
		fixed[i] = v[f]
	}
	if tm.strdict != nil && sameBoxes(&fixed, &tm.key) {
		return tm.strdict
	}
	if !sameBoxes(&fixed, &tm.last) {
		tm.last = fixed
		return nil
	}
	d := make(map[string]lua.LValue, msgFields)
	for _, f := range msgFixed {
		if v[f] != lua.LNil {
			d[msgKeyNames[f]] = v[f]
		}
	}
	for _, f := range msgVariable {
		d[msgKeyNames[f]] = lua.LTrue
	}
	tm.key, tm.strdict = fixed, d
	return d
}

// sameBoxes reports whether a and b hold the very same boxed values (the
// same type and data words). The message fields a template fixes are boxed
// once and reused (typeValue, nameOf, boxInt), so this is the cheap test;
// equal values boxed apart compare different, which only costs a miss.
func sameBoxes(a, b *[4]lua.LValue) bool {
	return *(*[8]uintptr)(unsafe.Pointer(a)) == *(*[8]uintptr)(unsafe.Pointer(b))
}

// newMessageTable returns a table with the message fields that are not
// nil, in msgKeyNames order.
func (tm *msgTemplate) newMessageTable(v *[msgFields]lua.LValue) *lua.LTable {
	if !fastTables {
		t := &lua.LTable{Metatable: lua.LNil}
		for i, k := range msgKeyNames {
			if v[i] != lua.LNil {
				t.RawSetString(k, v[i])
			}
		}
		return t
	}
	t := &lua.LTable{Metatable: lua.LNil}
	lt := (*ltable)(unsafe.Pointer(t))
	// Cloning a small map copies its one group of slots; overwriting a
	// key already there is then cheaper than inserting into a new map.
	if base := tm.base(v); base != nil {
		lt.strdict = maps.Clone(base)
		for _, f := range msgVariable {
			if v[f] != lua.LNil {
				lt.strdict[msgKeyNames[f]] = v[f]
			} else {
				delete(lt.strdict, msgKeyNames[f])
			}
		}
	} else {
		lt.strdict = maps.Clone(msgStrTemplate)
		for i, k := range msgKeyNames {
			if v[i] != lua.LNil {
				lt.strdict[k] = v[i]
			} else {
				delete(lt.strdict, k)
			}
		}
	}
	// A key listed without a value is skipped by pairs() (as after
	// t.k = nil), so every table can share the full list.
	lt.keys = msgKeys
	lt.k2i = maps.Clone(msgKeyPos)
	return t
}
