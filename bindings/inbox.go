package bindings

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

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

// inboxRef is ipc.inbox: this process's inbox, whoever it turns out to be.
type inboxRef struct{ m *messenger }

func (r *inboxRef) String() string { return "inbox of " + fmt.Sprintf("%q", r.m.env.SelfName()) }

// ipc.inbox:receive([opts]): the same as ipc.receive(opts).
func (m *messenger) luaInboxReceive(L *lua.LState) int {
	checkClass[*inboxRef](L, 1, "ipc.inbox")
	m.mustRun(L, "ipc.inbox:receive")
	if into := m.intoOpts(L.Get(2)); into != nil { // a receive loop's {into = t}
		ib := m.ownInbox(L, "ipc.inbox:receive")
		return m.receiveInto(L, "ipc.inbox:receive", ib.q, ib.obj, ib.nameV, into)
	}
	f, peer, w, into := m.recvOpts(L, 2, "ipc.inbox:receive")
	ib := m.ownInbox(L, "ipc.inbox:receive")
	return m.receive(L, "ipc.inbox:receive", ib.q, ib.obj, peer, f, w, ib.nameV, into)
}

func (r *inboxRef) selectPrepare(L *lua.LState) { r.m.ownInbox(L, "ipc.select") }

func (r *inboxRef) selectQueue() *ipc.Queue { return r.m.self.q }

func (r *inboxRef) selectObj() int32 { return r.m.self.obj }

func (r *inboxRef) selectTake(L *lua.LState) (lua.LValue, bool, error) {
	return r.m.take(L, "ipc.select", r.m.self.q, r.m.self.nameV)
}

// createInboxes is the parent's BeforeLaunch hook: one inbox per process
// that runs a Lua body, and the supervisor's.
func (m *messenger) createInboxes(e *Env) error {
	if len(e.Procs) == 0 && e.Main == nil {
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
	// The inboxes of the declared processes live until the run ends, and
	// are unmapped together then (one munmap: ipc.Space). Without a Space
	// (none could be reserved) each is mapped and unmapped alone.
	space, _ := ipc.ReserveSpace(len(owners) * ipc.QueueRegionSize(0))
	if space != nil {
		defer space.Done()
	}
	for _, p := range owners {
		if p != nil && p.Exec != nil {
			continue // an external program has no inbox
		}
		if err := m.createInbox(e, p, space); err != nil {
			m.releaseInboxes()
			return err
		}
	}
	return nil
}

// createInbox creates the inbox of p (nil: the supervisor) as an implicit
// object, with the capacity of the link from each process there is, mapped
// in space when it is not nil.
func (m *messenger) createInbox(e *Env, p *Process, space *ipc.Space) error {
	name := ParentName
	var caps []int // the capacity of the link from each process
	if p != nil {
		name = p.Name
		holders := e.SlotHolders() // by slot: who may send from each
		caps = make([]int, len(holders))
		for i, s := range holders {
			if s != nil {
				caps[i] = m.linkCapacity(s, p)
			}
		}
	}
	d := e.AddImplicit(inboxKind, name)
	ib := newInbox(name, p, d, ipc.Unbounded) // the supervisor's links are unbounded
	q, err := ipc.NewQueue(ipc.QueueConfig{Name: ib.what, Capacity: ipc.Unbounded, PerSender: true, SenderCapacity: caps, Space: space})
	if err != nil {
		e.Implicit = e.Implicit[:len(e.Implicit)-1]
		return err
	}
	ib.q = q
	d.AddFile("mem", q.File(), "")
	d.Object = ib
	m.inboxes[name] = ib
	return nil
}

// spawned is the parent's OnSpawn hook: the new instance's inbox, and the
// capacity of its links into the inboxes there are. Its slot may have been
// an ended process's: every queue forgets that one (ReuseSender).
func (m *messenger) spawned(e *Env, p *Process) error {
	for name, ib := range m.inboxes {
		switch {
		case ib.q == nil:
			delete(m.inboxes, name) // an ended process's, released
		case ib.proc != nil:
			ib.q.ReuseSender(int32(p.Slot), m.linkCapacity(p, ib.proc))
		default:
			ib.q.ReuseSender(int32(p.Slot), ipc.Unbounded)
		}
	}
	for _, d := range e.Decls {
		if b, ok := d.Object.(*mailbox); ok && b.q != nil {
			b.q.ReuseSender(int32(p.Slot), ipc.Unbounded)
		}
	}
	return m.createInbox(e, p, nil) // released when p ends: mapped alone
}

// forget unmaps, in a child, the inbox of p, which has ended.
func (m *messenger) forget(p *Process) {
	m.lastTo, m.lastPeer = "", nil
	if ib := m.inboxes[p.Name]; ib != nil && ib != m.self {
		if ib.q != nil {
			ib.q.Close()
		}
		delete(m.inboxes, p.Name)
	}
}

func (m *messenger) releaseInboxes() {
	m.lastTo, m.lastPeer = "", nil
	for name, ib := range m.inboxes {
		ib.Release()
		delete(m.inboxes, name)
	}
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
	if m.env.Host.Role() != RoleChild {
		L.RaiseError("%s: inbox of %q: no inboxes exist (ipc.run() has not launched any process)", what, owner)
	}
	d := m.env.ImplicitDecl(inboxKind, owner)
	if d != nil && d.File("mem") == nil && p != nil {
		if err := m.env.fetchInbox(d); err != nil {
			L.RaiseError("%s: inbox of %q: %v", what, owner, err)
		}
	}
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
		ib.q.Shutdown()
		return
	}
	ib.q.SenderGone(int32(p.Slot))
}

// HoldsFrom reports whether a message from the process in slot is queued.
func (ib *inbox) HoldsFrom(slot int) bool { return ib.q != nil && ib.q.HoldsFrom(int32(slot)) }

// Recover repairs the inbox when pid died holding its lock.
func (ib *inbox) Recover(pid int) {
	if ib.q != nil {
		ib.q.Recover(pid)
	}
}

// Release unmaps the parent's view at the end of the run.
func (ib *inbox) Release() {
	if ib.q != nil {
		ib.q.Close()
		ib.q = nil
	}
}
