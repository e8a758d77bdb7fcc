package bindings

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

const (
	mailboxKind  = "mailbox"
	mailboxClass = "ipc.mailbox"
)

// mailbox is an indirect link: one FIFO queue in shared memory that any
// number of processes send to and receive from, each message taken by
// exactly one receiver. The parent creates it when it is declared and
// keeps it until the end of the run, so the supervisor can still receive
// what is left in it after ipc.run() returns.
type mailbox struct {
	m        *messenger
	decl     *Decl
	name     string
	nameV    lua.LValue
	capacity int // ipc.Unbounded, 0 (rendezvous) or n
	q        *ipc.Queue
	obj      int32
	seq      uint64 // messages this process has sent here

	// what names it in errors (mailbox "jobs"); the others, built once,
	// name each operation (mailbox "jobs": send).
	what, sendWhat, recvWhat, closeWhat, selectWhat string
}

func (b *mailbox) String() string { return b.what }

// mailboxMethods are a mailbox's methods. Each mailbox has its own
// metatable whose __index is a plain table of these and its fields (name,
// capacity): a method call is then a table lookup in the Lua VM rather
// than a call into Go, which matters on the message path.
var mailboxMethods = []namedFunc{
	{"send", mailboxSend},
	{"receive", mailboxReceive},
	{"close", mailboxClose},
	{"len", mailboxLen},
}

func (b *mailbox) userData(L *lua.LState) *lua.LUserData {
	idx := L.CreateTable(0, len(mailboxMethods)+2)
	for _, m := range mailboxMethods {
		idx.RawSetString(m.name, L.NewFunction(m.fn))
	}
	idx.RawSetString("name", b.nameV)
	if b.capacity != ipc.Unbounded {
		idx.RawSetString("capacity", lua.LNumber(b.capacity))
	}
	strictMethods(L, idx, "capacity") // box:recieve(): did you mean receive?
	mt := L.CreateTable(0, 3)
	mt.RawSetString("__index", idx)
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(b.what))
		return 1
	}))
	mt.RawSetString("__metatable", lua.LString(mailboxClass))
	ud := L.NewUserData()
	ud.Value = b
	ud.Metatable = mt
	return ud
}

// ipc.mailbox(name, [{capacity = n}]) -> mailbox
// capacity: 0 = rendezvous, n = at most n queued, absent = unbounded.
func (m *messenger) luaMailbox(L *lua.LState) int {
	name := L.CheckString(1)
	if name == "" {
		L.ArgError(1, "mailbox name must not be empty")
	}
	opts := optTable(L, 2)
	capacity := ipc.Unbounded
	if opts != nil && opts.RawGetString("capacity") != lua.LNil {
		capacity = optInt(L, opts, "capacity", 0)
		if capacity < 0 {
			L.RaiseError("mailbox %q: capacity must be >= 0 (0 = rendezvous), got %d; leave it out for an unbounded mailbox", name, capacity)
		}
	}
	spec := "capacity=unbounded"
	if capacity != ipc.Unbounded {
		spec = fmt.Sprintf("capacity=%d", capacity)
	}
	if prev := m.mailboxes[name]; prev != nil && !m.env.running {
		L.RaiseError("mailbox %q is declared twice (first at %s)", name, prev.decl.Line)
	}
	d := m.env.Declare(L, mailboxKind, name, spec)
	b := &mailbox{m: m, decl: d, name: name, what: fmt.Sprintf("mailbox %q", name), nameV: lua.LString(name),
		capacity: capacity, obj: int32(d.Index)}
	b.sendWhat, b.recvWhat, b.closeWhat, b.selectWhat = b.what+": send", b.what+": receive", b.what+": close", b.what+": select"
	d.Object = b
	m.mailboxes[name] = b
	m.env.Make(L, d, MakerFuncs{
		CreateFn: func(d *Decl) error {
			q, err := ipc.NewQueue(ipc.QueueConfig{Name: b.what, Capacity: capacity})
			if err != nil {
				return err
			}
			b.q = q
			d.AddFile("mem", q.File(), "")
			return nil
		},
		OpenFn: func(d *Decl) error {
			f := d.File("mem")
			if f == nil {
				return fmt.Errorf("%s: this process did not inherit it", b.what)
			}
			q, err := ipc.OpenQueue(f, ipc.QueueConfig{Name: b.what})
			b.q = q
			return err
		},
	})
	L.Push(b.userData(L))
	return 1
}

// checkMailbox returns the mailbox at 1, ready for the operation that what
// names: in a process body (or the supervisor after ipc.run), not in a
// check.
func checkMailbox(L *lua.LState, what func(b *mailbox) string) *mailbox {
	// The message path's case first, without checkClass's generic type
	// assertion (~100 instructions a call, as much as the rest of this).
	if ud, ok := L.Get(1).(*lua.LUserData); ok {
		if b, ok := ud.Value.(*mailbox); ok && b.q != nil && b.m.env.running {
			return b
		}
	}
	b := checkClass[*mailbox](L, 1, "mailbox")
	b.m.mustRun(L, what(b))
	if b.q == nil {
		L.RaiseError("%s: not available while checking a script (nothing is created)", what(b))
	}
	return b
}

func mailboxSendWhat(b *mailbox) string    { return b.sendWhat }
func mailboxReceiveWhat(b *mailbox) string { return b.recvWhat }
func mailboxCloseWhat(b *mailbox) string   { return b.closeWhat }

// box:send(body, [{type =, timeout =, block =}]) -> true | nil, err
// err: "full" (block = false and no room, or a rendezvous no receiver took
// at once), "timeout". Sending to a closed mailbox raises an error.
func mailboxSend(L *lua.LState) int {
	b := checkMailbox(L, mailboxSendWhat)
	if L.GetTop() == 2 && b.capacity != 0 {
		// box:send(s), a producer loop's: a string, no options
		if s, ok := L.Get(2).(lua.LString); ok {
			if sent, err := b.m.sendString(L, b.sendWhat, b.q, b.obj, b.obj, &b.seq, string(s)); sent {
				return b.sent(L, err)
			}
		}
	}
	var typ string
	var w ipc.WaitOpts
	var keep bool
	if L.GetTop() >= 3 { // box:send(body), the common call, has no options
		typ, w, keep = sendOptsKeep(L, 3)
	}
	err := b.m.send(L, destination{what: b.sendWhat, q: b.q, obj: b.obj,
		dst: b.obj, capacity: b.capacity, seq: &b.seq, keep: keep}, typ, L.Get(2), w) // a mailbox's header dst is its index
	return b.sent(L, err)
}

// sent pushes a send's result; sending to a closed mailbox raises an error
// (but in the supervisor after ipc.run).
func (b *mailbox) sent(L *lua.LState, err error) int {
	if err == nil {
		L.Push(lua.LTrue)
		return 1
	}
	if err == ipc.ErrClosed && !b.m.afterRun() {
		L.RaiseError("%s: the mailbox is closed", b.sendWhat)
	}
	return pushSent(L, err)
}

// box:receive([{from =, type =, timeout =, block =}]) -> message | nil, err
// err: "empty" (block = false), "timeout", "closed" (the mailbox was
// closed and is drained, or from names a process that has exited and left
// nothing here).
func mailboxReceive(L *lua.LState) int {
	b := checkMailbox(L, mailboxReceiveWhat)
	if into := b.m.intoOpts(L.Get(2)); into != nil {
		return b.m.receiveInto(L, b.recvWhat, b.q, b.obj, b.nameV, into)
	}
	f, peer, w, into := b.m.recvOpts(L, 2, b.recvWhat)
	return b.m.receive(L, b.recvWhat, b.q, b.obj, peer, f, w, b.nameV, into)
}

// box:close(): senders then get an error; receivers take what is queued,
// then get nil, "closed". For every process.
func mailboxClose(L *lua.LState) int {
	b := checkMailbox(L, mailboxCloseWhat)
	b.q.Shutdown()
	return 0
}

// box:len() -> n: the messages queued now (a snapshot; in a rendezvous
// mailbox, the senders waiting for a receiver).
func mailboxLen(L *lua.LState) int {
	b := checkMailbox(L, mailboxLenWhat)
	L.Push(lua.LNumber(b.q.Len()))
	return 1
}

func mailboxLenWhat(b *mailbox) string { return b.what + ": len" }

func (b *mailbox) selectPrepare(*lua.LState) {}
func (b *mailbox) selectQueue() *ipc.Queue   { return b.q }
func (b *mailbox) selectObj() int32          { return b.obj }
func (b *mailbox) selectTake(L *lua.LState) (lua.LValue, bool, error) {
	return b.m.take(L, b.selectWhat, b.q, b.nameV)
}

// ProcessExited releases receives waiting for a message from p alone.
func (b *mailbox) ProcessExited(p *Process) {
	if b.q != nil {
		b.q.SenderGone(int32(p.Slot))
	}
}

// HoldsFrom reports whether a message from the process in slot is queued.
func (b *mailbox) HoldsFrom(slot int) bool { return b.q != nil && b.q.HoldsFrom(int32(slot)) }

// Recover repairs the mailbox when pid died holding its lock.
func (b *mailbox) Recover(pid int) {
	if b.q != nil {
		b.q.Recover(pid)
	}
}

// Release unmaps the parent's view at the end of the run.
func (b *mailbox) Release() {
	if b.q != nil {
		b.q.Close()
		b.q = nil
	}
}
