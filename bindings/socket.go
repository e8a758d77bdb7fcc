package bindings

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

const (
	listenerClass = "ipc.listener"
	connClass     = "ipc.conn"
	udpConnClass  = "ipc.conn.udp"
)

// listener is a bound socket (ipc.Listener) shared by the processes of a
// run: a "tcp" or "unix" socket that accepts connections, or a "udp" socket
// that sends and receives datagrams.
//
// The parent binds it when the script declares it, before any process
// runs, so its real address (a port 0 replaced by the port the kernel
// chose) is known to every process as l.address, and a client can connect
// as soon as it starts. Every child inherits the descriptor; any of them
// may accept. A unix socket named without a '/' lives in the run's private
// directory; one given as a path is made at that path, exclusively (bind
// fails on anything there, a symlink included), mode 0600. Either way the
// parent removes it when the run ends (ipc.Listener.Close removes the path
// it created, so the parent keeps its descriptor until then).
type listener struct {
	kobject
	kind   string
	public bool          // {public = true}: a tcp listener takes connections without the run's hello
	l      *ipc.Listener // nil while checking
	env    *Env
}

// private says whether connections to l must open with the run's hello
// (ipc/socket_hello.go): a tcp listener not declared public, in a run
// (the runtime sets Env.Secret).
func (l *listener) private() bool {
	return l.kind == "tcp" && !l.public && l.env.Secret != ""
}

// conn is a connected socket: a byte stream (read, write, lines, close:
// stream.go) that also carries framed messages (send, receive), both
// through the same read buffer. On a udp connection each write is one
// datagram and each read returns one (udpRead).
type conn struct {
	stream
	st       *ipc.Stream
	m        *messenger // messenger.go: the codec and the message table
	seq      uint64     // messages sent on this connection
	peerAddr string     // the remote address, once asked (peer)
	out, in  ipc.Message
	// trusted: the peer is a process of the run, so a frame's source is
	// believed (socketSender); otherwise every frame is from "outside".
	trusted bool
	// A udp connection of a traced run: its recorder, and how many bytes
	// at the end of the datagram being read are its clock (udpRead).
	udpRec   *trace.Recorder
	udpTrail int
	env      *Env
}

func openSocket(L *lua.LState, mod *lua.LTable, env *Env) {
	env.registerClassOf(L, listenerClass, func() map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			"accept":   listenerAccept,
			"sendto":   listenerSendTo,
			"recvfrom": listenerRecvFrom,
		}
	}, func(L *lua.LState, v any, key string) lua.LValue {
		l := v.(*listener)
		switch {
		case key == "kind":
			return lua.LString(l.kind)
		case key == "address" && l.l != nil:
			return lua.LString(l.l.Address())
		}
		return lua.LNil
	}, "kind", "address")
	env.registerClassOf(L, connClass, connMethods, nil)
	env.registerClassOf(L, udpConnClass, func() map[string]lua.LGFunction {
		udp := connMethods()
		udp["read"] = udpRead
		udp["write"] = udpWrite
		return udp
	}, nil)
	env.setFunc(L, mod, "listen", env.luaListen)
	env.setFunc(L, mod, "connect", env.luaConnect)
}

// connMethods are a connection's methods: a stream's, send and receive.
func connMethods() map[string]lua.LGFunction {
	methods := funcMap(streamMethods, 4)
	methods["send"] = connSend
	methods["receive"] = connReceive
	return methods
}

func checkSocketKind(L *lua.LState, n int) string {
	kind := L.CheckString(n)
	switch kind {
	case "tcp", "unix", "udp":
		return kind
	}
	L.ArgError(n, fmt.Sprintf("socket kind must be \"tcp\", \"unix\" or \"udp\", got %q", kind))
	return ""
}

// unixPath is where a unix socket address points: a name without '/' is
// a file in the run directory, anything else a path.
func (e *Env) unixPath(address string) (string, error) {
	if strings.Contains(address, "/") {
		return address, nil
	}
	return e.runDirPath(address)
}

// ipc.listen(kind, address, [{public = false}]) -> l
// kind is "tcp", "unix" or "udp". For tcp and udp, address is "host:port"
// ("127.0.0.1:0" picks a free port); for unix, a name in the run directory
// or a path. l.address is the bound address, the same in every process.
// A tcp listener takes only connections from the run's processes (they
// open with the run's hello, which ipc.connect sends to l.address) unless
// public is true; public = false on a unix or udp listener changes nothing
// (see private).
func (e *Env) luaListen(L *lua.LState) int {
	kind := checkSocketKind(L, 1)
	address := L.CheckString(2)
	if address == "" {
		L.ArgError(2, "address must not be empty")
	}
	public := optBool(L, optTable(L, 3), "public", false)
	spec := "kind=" + kind
	if public {
		spec += " public=true"
	}
	d := e.Declare(L, "listener", address, spec)
	l := &listener{kobject: kobject{decl: d, what: fmt.Sprintf("%s listener %q", kind, address)}, kind: kind, public: public, env: e}
	d.Object = l
	made := e.Make(L, d, MakerFuncs{
		CreateFn: func(d *Decl) (err error) {
			addr := address
			if kind == "unix" {
				if addr, err = e.unixPath(address); err != nil {
					return fmt.Errorf("%s: %w", l.what, err)
				}
			}
			if l.l, err = ipc.Listen(kind, addr); err != nil {
				return err // ipc's errors name the listener
			}
			d.AddFile("l", l.l.File(), "")
			if kind == "unix" && addr == address {
				e.recordPath(L, l.what, addr) // a path the script gave
			}
			return nil
		},
		OpenFn: func(d *Decl) (err error) {
			if l.l, err = ipc.OpenListener(d.File("l"), kind); err != nil || kind != "unix" {
				return err
			}
			path, err := e.unixPath(address)
			if err == nil {
				l.l.SetPath(path)
			}
			return err
		},
	})
	if made {
		l.l.SetStatus(e.Slot, int32(d.Index))
		if l.private() {
			l.l.RequireHello(ipc.Hello(e.Secret))
		}
	}
	L.Push(newUserData(L, listenerClass, l))
	return 1
}

// Release closes the parent's socket at the end of the run, removing a
// unix socket's file.
func (l *listener) Release() {
	if l.l != nil {
		l.l.Close()
	}
}

func checkListener(L *lua.LState) *listener {
	l := checkClass[*listener](L, 1, "listener")
	if l.l == nil {
		l.notHere(L)
	}
	return l
}

// l:accept([{timeout =, block =}]) -> conn | nil, "timeout" | nil, "empty"
func listenerAccept(L *lua.LState) int {
	l := checkListener(L)
	var t0 int64
	if l.decl.Trace != nil {
		t0 = trace.Now()
	}
	st, err := l.l.Accept(WaitOpts(L, 2))
	if l.decl.Trace != nil { // picks up the clocks of the connects before it
		traceAcquire(L, l.decl.Trace, l.decl, trace.OpAccept, t0, err, "")
	}
	if err != nil {
		return Outcome(L, err)
	}
	c := newConn(l.env, fmt.Sprintf("%s connection accepted on %s", l.kind, l.l.Address()), int32(l.decl.Index), st)
	// A unix socket is 0600 in a private directory; a private tcp
	// listener took the run's hello. A public one takes anyone.
	c.trusted = l.kind == "unix" || l.private()
	L.Push(newUserData(L, connClass, c))
	return 1
}

// l:sendto(address, bytes) -> true      (udp)
// Sends one datagram to "host:port".
func listenerSendTo(L *lua.LState) int {
	l := checkListener(L)
	to := L.CheckString(2)
	b := luaBytes(L, 3)
	rec := l.env.Trace
	if rec == nil {
		if err := l.l.SendTo(to, b); err != nil {
			L.RaiseError("%s", err.Error())
		}
		L.Push(lua.LTrue)
		return 1
	}
	t0 := trace.Now()
	rec.Tick()
	d := b
	if l.env.udpRun(to) && datagramRoom(b, rec) { // the datagram carries the clock (trace/datagram.go)
		d = rec.AppendDatagramClock(b[:len(b):len(b)])
	}
	err := l.l.SendTo(to, d)
	rec.Emit(&trace.Event{Op: trace.OpSend, Kind: l.decl.Kind, Object: l.decl.Name, Where: traceWhere(L), Time: t0, End: trace.Now(),
		Msg: &trace.MsgID{Src: rec.P, Seq: rec.Seq()}, Len: int64(len(b)), Peer: to, Outcome: outcomeOf(err)})
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	L.Push(lua.LTrue)
	return 1
}

// l:recvfrom([{timeout =, block =}]) -> bytes, address | nil, "timeout" | nil, "empty"   (udp)
func listenerRecvFrom(L *lua.LState) int {
	l := checkListener(L)
	var t0 int64
	rec := l.env.Trace
	if rec != nil {
		t0 = trace.Now()
	}
	b, from, err := l.l.RecvFrom(WaitOpts(L, 2))
	if rec != nil {
		var traced bool
		b, traced = traceDatagram(L, rec, l.decl.Kind, l.decl.Name, b, t0, err, l.env)
		if traced {
			l.env.udpLearn(from)
		}
	}
	if err != nil {
		return Outcome(L, err)
	}
	L.Push(lua.LString(b))
	L.Push(lua.LString(from))
	return 2
}

// traceDatagram strips the clock a datagram b of this run carries, merges
// it, and records the receive (with its outcome err). It returns the
// payload, and whether the datagram came from a traced process of the run.
func traceDatagram(L *lua.LState, rec *trace.Recorder, kind, name string, b []byte, t0 int64, err error, env *Env) ([]byte, bool) {
	e := trace.Event{Op: trace.OpReceive, Kind: kind, Object: name, Where: traceWhere(L), Time: t0, End: trace.Now(), Outcome: outcomeOf(err)}
	traced := false
	if err == nil {
		payload, clock, ok := rec.SplitDatagram(b)
		if ok {
			if c, _, cerr := rec.AcquireMessage(clock); cerr == nil {
				b, traced = payload, true
				e.Cause, e.Msg = &c, &trace.MsgID{Src: c.P, Seq: c.Seq}
				if c.P >= 0 && c.P < len(env.Procs) {
					e.Peer = env.Procs[c.P].Name
				}
			}
		}
		e.Len = int64(len(b))
	}
	rec.Record(&e)
	return b, traced
}

// datagramRoom says whether payload b leaves room for the clock in a
// datagram: one too long to carry it is sent as it is (its receive has no
// cause) rather than fail only because the run is traced.
func datagramRoom(b []byte, rec *trace.Recorder) bool {
	return len(b)+trace.DatagramTrailer(len(rec.Clock())) <= ipc.MaxDatagram
}

// udpRun says whether a datagram to address goes to a process of the run
// (and so may carry a clock): the address of one of the run's udp
// listeners, or one a datagram with the run's clock came from.
func (e *Env) udpRun(address string) bool {
	if e.udpPeers[address] {
		return true
	}
	for _, d := range e.Decls {
		if o, ok := d.Object.(*listener); ok && o.kind == "udp" && o.l != nil && o.l.Address() == address {
			return true
		}
	}
	return false
}

// udpLearn remembers that address sent a datagram with the run's clock
// (a connected udp socket of a process of the run): a reply carries one.
func (e *Env) udpLearn(address string) {
	if e.udpPeers == nil {
		e.udpPeers = map[string]bool{}
	}
	if len(e.udpPeers) < 4096 {
		e.udpPeers[address] = true
	}
}

// select: a listener is ready when a connection or a datagram waits;
// select returns the listener itself, and the script accepts (or
// recvfroms) with block = false, since another process may take it first.
func (l *listener) selectFd() int        { return l.l.Fd() }
func (l *listener) selectBuffered() bool { return false }
func (l *listener) selectTake(*lua.LState) (lua.LValue, bool, error) {
	return lua.LNil, true, nil
}

var _ fdSelectable = (*listener)(nil)

// ipc.connect(kind, address, [{timeout =}]) -> conn | nil, "timeout"
// For unix, address is a name in the run directory or a path. Without a
// timeout a refused connection fails at once; with one, connect retries
// until a listener is there or the time is up.
func (e *Env) luaConnect(L *lua.LState) int {
	kind := checkSocketKind(L, 1)
	address := L.CheckString(2)
	w := WaitOpts(L, 3)
	addr := address
	if kind == "unix" {
		var err error
		if addr, err = e.unixPath(address); err != nil {
			L.RaiseError("%s %q: connect: %v", kind, address, err)
		}
	}
	// The listener it connects to, if the script declared it, names the
	// wait in a deadlock report.
	obj := int32(-1)
	var hello []byte // the run's, for a private tcp listener of the run
	for _, d := range e.Decls {
		if l, ok := d.Object.(*listener); ok && l.kind == kind && l.l != nil && (l.l.Address() == addr || d.Name == address) {
			obj = int32(d.Index)
			if hello = nil; l.private() {
				hello = ipc.Hello(e.Secret)
			}
		}
	}
	rec := e.Trace
	var t0 int64
	if rec != nil {
		t0 = trace.Now()
		rec.Tick()
		if obj >= 0 { // the clock waits for the accept on the listener's slot
			rec.Board().Release(int(obj), rec)
		}
	}
	if w.Timeout > 0 {
		e.Slot.Enter(ipc.OpConnect, obj, -1, true)
	}
	st, err := ipc.Dial(kind, addr, w)
	if err == nil && hello != nil {
		if herr := st.SendHello(hello); herr != nil {
			st.Close()
			err = fmt.Errorf("%s %q: connect: sending the run's hello: %w", kind, address, herr)
		}
	}
	if w.Timeout > 0 {
		e.Slot.Leave()
	}
	if rec != nil {
		ev := trace.Event{Op: trace.OpConnect, Kind: "listener", Object: address, Where: traceWhere(L), Time: t0, End: trace.Now(), Outcome: outcomeOf(err)}
		if obj >= 0 {
			ev.Kind, ev.Object = e.Decls[obj].Kind, e.Decls[obj].Name
		}
		rec.Emit(&ev)
	}
	if err != nil {
		return Outcome(L, err)
	}
	e.Slot.Done()
	class := connClass
	if kind == "udp" {
		class = udpConnClass
	}
	c := newConn(e, fmt.Sprintf("%s connection to %q", kind, address), obj, st)
	c.trusted = obj >= 0 // a listener of the run, held by the run's processes only
	if kind == "udp" {
		c.udpRec = e.Trace
	}
	L.Push(newUserData(L, class, c))
	return 1
}

// d:read([n], [{timeout =, block =}]) -> datagram | nil, "timeout" | nil, "empty"
// On a udp connection a read returns one datagram (at most n bytes of it;
// the rest is returned by the next read): a datagram is a message, not
// part of a stream.
func udpRead(L *lua.LState) int {
	c := checkConn(L)
	max, opts := -1, 2
	if n, ok := L.Get(2).(lua.LNumber); ok {
		max, opts = int(n), 3
	}
	if intoBuffer(L, optTable(L, opts), c.what, "read") != nil {
		L.RaiseError("%s: read: a udp read returns each datagram as a string; into is for byte streams", c.what)
	}
	st := c.reader(L)
	if st.Buffered() == 0 {
		var t0 int64
		if c.udpRec != nil {
			t0 = trace.Now()
		}
		err := st.FillDatagram(WaitOpts(L, opts))
		if c.udpRec != nil {
			c.traceDatagram(L, st, t0, err)
		}
		if err != nil {
			return readOutcome(L, err)
		}
	}
	n := st.Buffered() - c.udpTrail
	if max >= 0 && max < n {
		n = max
	}
	b, err := st.Read(n, ipc.WaitOpts{NonBlocking: true}) // what is buffered
	if err != nil {
		return readOutcome(L, err)
	}
	if c.udpTrail > 0 && st.Buffered() == c.udpTrail { // the datagram's clock
		st.Discard(c.udpTrail)
		c.udpTrail = 0
	}
	L.Push(lua.LString(ownedString(b)))
	return 1
}

// traceDatagram records the receive of the datagram now in st (err: why
// none came), merging the clock it carries and setting udpTrail.
func (c *conn) traceDatagram(L *lua.LState, st *ipc.Stream, t0 int64, err error) {
	var all []byte
	if err == nil {
		all = st.Peek()
	}
	kind, name := c.traceName()
	payload, traced := traceDatagram(L, c.udpRec, kind, name, all, t0, err, c.env)
	if traced {
		c.udpTrail = len(all) - len(payload)
	}
}

// d:write(...) on a udp connection: one datagram. In a traced run, to a
// listener of the run, the datagram carries the writer's clock after the
// payload (trace/datagram.go); anything else is stream.go's write.
func udpWrite(L *lua.LState) int {
	c := checkConn(L)
	rec := c.udpRec
	if rec == nil {
		return streamWrite(L)
	}
	top := L.GetTop()
	opts := lua.LNil
	if t, ok := L.Get(top).(*lua.LTable); ok && top >= 2 {
		opts, top = t, top-1
	}
	var b []byte
	for i := 2; i <= top; i++ {
		b = append(b, luaBytes(L, i)...)
	}
	t0 := trace.Now()
	rec.Tick()
	d := b
	if c.trusted && datagramRoom(b, rec) {
		d = rec.AppendDatagramClock(b[:len(b):len(b)])
	}
	L.SetTop(1)
	L.Push(lua.LString(ownedString(d)))
	if opts != lua.LNil {
		L.Push(opts)
	}
	n := streamWrite(L) // untraced for a datagram socket: it has no slot
	outcome := ""
	if L.Get(-n) != lua.LTrue { // nil, "full" | "timeout" | "closed"
		outcome = L.Get(-1).String()
	}
	kind, name := c.traceName()
	rec.Emit(&trace.Event{Op: trace.OpSend, Kind: kind, Object: name, Where: traceWhere(L), Time: t0, End: trace.Now(),
		Msg: &trace.MsgID{Src: rec.P, Seq: rec.Seq()}, Len: int64(len(b)), Outcome: outcome})
	return n
}

// traceName is what a udp connection's events name: the listener it
// connected to, or the connection.
func (c *conn) traceName() (kind, name string) {
	if kind, name = c.env.traceObject(c.obj); name == "" {
		kind, name = "conn", c.what
	}
	return kind, name
}

func newConn(env *Env, what string, obj int32, st *ipc.Stream) *conn {
	c := &conn{st: st, env: env}
	c.what, c.obj, c.slot = what, obj, env.Slot
	c.adopt(st)
	c.r, c.w = st, st
	if env.Trace != nil { // its bytes carry clocks, named by the listener
		name := what
		if _, n := env.traceObject(obj); n != "" {
			name = n
		}
		c.traceConn(env.Trace, name, st.Fd())
	}
	return c
}

func checkConn(L *lua.LState) *conn {
	return checkClass[*conn](L, 1, "connection")
}

// messenger finds messenger.go's messenger of this Lua state, whose body
// codec and message tables are those of mailboxes and direct links.
func (c *conn) messenger(L *lua.LState) *messenger {
	if c.m == nil {
		reg := L.Get(lua.RegistryIndex).(*lua.LTable)
		if ud, ok := reg.RawGetString(messengerKey).(*lua.LUserData); ok {
			c.m, _ = ud.Value.(*messenger)
		}
		if c.m == nil {
			L.RaiseError("%s: message passing is not loaded", c.what)
		}
	}
	return c.m
}

// c:send(body, [{type =, timeout =, block =}]) -> true | nil, "full" | nil, "timeout" | nil, "closed"
// Sends body (any encodable Lua value) as one framed message (ipc.WriteFrame:
// a length, the message header, the MessagePack body). timeout and block
// say how long to wait for room; once a message has started it is written
// whole, so the stream never carries half a frame. "closed": the peer has
// closed the connection.
func connSend(L *lua.LState) int {
	c := checkConn(L)
	if c.w == nil {
		L.RaiseError("%s: send: the connection is closed", c.what)
	}
	typ, w := sendOpts(L, 3)
	m := c.messenger(L)
	b, err := m.encoder().encode(L.Get(2), len(typ))
	if err != nil {
		L.RaiseError("%s: send: %v", c.what, err)
	}
	if err := c.w.WaitWritable(w); err != nil {
		return Outcome(L, err)
	}
	msg := &c.out
	msg.Type, msg.Src, msg.Dst, msg.Seq, msg.Time, msg.Body = typ, socketSrc(m.selfSlot()), c.obj, c.seq+1, ipc.MonoNow(), b
	rec := m.env.Trace
	var t0 int64
	if rec != nil { // the clock travels in front of the body, as on a queue
		t0 = trace.Now()
		rec.Tick()
		m.tbuf = append(rec.AppendClock(m.tbuf[:0]), b...)
		msg.Body, msg.Flags = m.tbuf, trace.FlagClock
	}
	c.slot.Enter(ipc.OpSend, c.obj, -1, false)
	err = ipc.WriteFrame(c.w.IO(ipc.WaitOpts{}), msg) // a frame goes whole
	c.slot.Leave()
	msg.Body, msg.Flags = nil, 0
	closed := errors.Is(err, ipc.ErrClosed)
	if rec != nil {
		outcome := err
		if closed {
			outcome = ipc.ErrClosed
		}
		m.traceSend(L, rec, c.obj, typ, len(b), t0, outcome)
	}
	if closed {
		return Outcome(L, ipc.ErrClosed)
	}
	if err != nil {
		L.RaiseError("%s: send: %v", c.what, err)
	}
	c.seq++
	c.slot.Done()
	L.Push(lua.LTrue)
	return 1
}

// c:receive([{timeout =, block =}]) -> message | nil, "timeout" | nil, "empty" | nil, "closed" | nil, "invalid", why
// The next framed message, as the table mailboxes give:
// {type =, body =, src =, dst =, len =, seq =, time =}, and peer, the
// connection's remote address; dst is the receiving process, src the
// sending process of this run, or "outside" (socketSender). "closed": the
// peer closed the connection. "invalid": the frame arrived whole but its
// body cannot be decoded (an unsupported MessagePack extension, say); why
// names the sender, and the connection goes on with the next frame.
func connReceive(L *lua.LState) int {
	c := checkConn(L)
	w := WaitOpts(L, 2)
	m := c.messenger(L)
	st := c.reader(L)
	if err := st.WaitReadable(w); err != nil { // then the frame is read whole
		return Outcome(L, err)
	}
	var t0 int64
	if m.env.Trace != nil {
		t0 = trace.Now()
	}
	c.slot.Enter(ipc.OpReceive, c.obj, -1, w.Timeout > 0)
	err := ipc.ReadFrame(st.IO(ipc.WaitOpts{}), &c.in)
	c.slot.Leave()
	switch {
	case err == ipc.ErrEOF:
		return Outcome(L, ipc.ErrClosed)
	case errors.Is(err, io.ErrUnexpectedEOF):
		L.RaiseError("%s: receive: the connection ended in the middle of a message", c.what)
	case err != nil:
		L.RaiseError("%s: receive: %v", c.what, err)
	}
	c.slot.Done()
	outside := true
	if c.trusted {
		c.in.Src, outside = socketSender(c.in.Src, len(m.env.Procs))
	} else {
		c.in.Src = outsideSlot // whatever it claims: anyone may have connected
	}
	if m.env.Trace != nil || c.in.Flags != 0 {
		m.traceFrame(L, &c.in, c.obj, t0)
	}
	m.decoder().files = nil // a body from a socket never takes a descriptor (fdpass.go)
	t, err := m.messageTable(L, &c.in, m.nameOf(m.selfSlot()))
	m.decoder().files = m.passedObject
	if err != nil {
		from := m.nameOf(c.in.Src).String()
		if outside {
			from = "outside (" + c.peer() + ")"
		}
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		L.Push(lua.LNil)
		L.Push(lua.LString(ipc.ErrInvalid.Error()))
		L.Push(lua.LString(fmt.Sprintf("%s: receive: message from %s: %v", c.what, from, err)))
		return 3
	}
	t.RawSetString("peer", lua.LString(c.peer()))
	L.Push(t)
	return 1
}

// On a socket the header's source says who sent the message, for a peer
// that is not a process of the run as well: 0 is a program outside the
// run, n >= 1 the run's process n (declaration order: the process's slot
// plus one), 0xffffffff (-1) the supervisor. ipcscript's processes write
// their own; the receiver believes it (a socket is not authenticated) but
// takes any number that names no process as outside. A connection whose
// peer may be anyone (accepted on a public tcp listener, or made to an
// address that is not one of the run's listeners) is all outside: its
// claims are not believed (conn.trusted).

// socketSrc is the source a process writes on a socket.
func socketSrc(slot int32) int32 {
	if slot == parentSlot {
		return parentSlot
	}
	return slot + 1
}

// socketSender maps a socket source back to a slot; outside is true when it
// names no process of the run (the slot is then outsideSlot).
func socketSender(src int32, procs int) (slot int32, outside bool) {
	switch {
	case src == parentSlot:
		return parentSlot, false
	case src >= 1 && int(src) <= procs:
		return src - 1, false
	}
	return outsideSlot, true
}

// peer is the connection's remote address: "127.0.0.1:5555", a unix
// socket's path, or "unix (unnamed)" for a client that bound no name.
func (c *conn) peer() string {
	if c.peerAddr != "" {
		return c.peerAddr
	}
	c.peerAddr = "unknown"
	if sa, err := unix.Getpeername(c.st.Fd()); err == nil {
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			c.peerAddr = fmt.Sprintf("%s:%d", net.IP(sa.Addr[:]), sa.Port)
		case *unix.SockaddrInet6:
			c.peerAddr = fmt.Sprintf("[%s]:%d", net.IP(sa.Addr[:]), sa.Port)
		case *unix.SockaddrUnix:
			c.peerAddr = sa.Name
			if sa.Name == "" || sa.Name == "@" {
				c.peerAddr = "unix (unnamed)"
			}
		}
	}
	return c.peerAddr
}
