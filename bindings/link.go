package bindings

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

// linkDecl is one ipc.link declaration.
type linkDecl struct {
	from, to string // instance or group names
	capacity int    // ipc.Unbounded, 0 or n
	line     string
}

// ipc.send(to, body, [{type =, timeout =, block =}]) -> true | nil, err
// err: "full" (block = false, or a rendezvous no receiver took at once),
// "timeout", "closed" (the receiver has exited).
func (m *messenger) luaSend(L *lua.LState) int {
	to := L.CheckString(1)
	m.mustRun(L, "ipc.send")
	ib := m.peerInbox(L, to)
	if ib == nil { // a spawned process that ended before this one knew it
		return Outcome(L, ipc.ErrClosed)
	}
	typ, w, keep := sendOptsKeep(L, 3)
	return pushSent(L, m.send(L, destination{what: ib.sendWhat, q: ib.q, obj: ib.obj, peer: ib.proc,
		dst: ib.slot, capacity: ib.capacity, seq: &ib.seq, keep: keep, inbox: true}, typ, L.Get(2), w))
}

// ipc.receive([{from =, type =, timeout =, block =}]) -> message | nil, err
// err: "empty" (block = false), "timeout", "closed" (from names a process
// that has exited and left nothing queued).
func (m *messenger) luaReceive(L *lua.LState) int {
	m.mustRun(L, "ipc.receive")
	if into := m.intoOpts(L.Get(1)); into != nil { // a receive loop's {into = t}
		ib := m.ownInbox(L, "ipc.receive")
		return m.receiveInto(L, "ipc.receive", ib.q, ib.obj, ib.nameV, into)
	}
	f, peer, w, into := m.recvOpts(L, 1, "ipc.receive")
	ib := m.ownInbox(L, "ipc.receive")
	return m.receive(L, "ipc.receive", ib.q, ib.obj, peer, f, w, ib.nameV, into)
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

func (m *messenger) isProcessOrGroup(name string) bool {
	for _, p := range m.env.Procs {
		if p.Name == name || p.Group == name {
			return true
		}
	}
	return m.env.Templates[name] != nil
}

// peerInbox returns the inbox of the process named to, mapping it on
// first use; nil for a spawned process that ended before this process
// learned of it (a send to it says "closed").
func (m *messenger) peerInbox(L *lua.LState, to string) *inbox {
	// The last one asked for, without the map's string hash: a loop
	// sends to one peer. forget and releaseInboxes clear it.
	if ib := m.lastPeer; ib != nil && ib.q != nil && to == m.lastTo {
		return ib
	}
	if ib := m.inboxes[to]; ib != nil && ib.q != nil {
		m.lastTo, m.lastPeer = to, ib
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
	if p != nil && (p.gone || p.end != nil && m.env.ImplicitDecl(inboxKind, to) == nil) {
		return nil // it ended, and the supervisor has let its inbox go
	}
	return m.openInbox(L, "ipc.send", to, p)
}
