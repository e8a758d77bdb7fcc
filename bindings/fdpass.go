package bindings

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

// Descriptors in messages. A pipe end, an open FIFO, a socket connection
// or a listener can be a value in a message body sent to a process
// (ipc.send), a mailbox (box:send) or given to ipc.spawn as args. A body
// lives in shared memory (a queue's ring), where a descriptor means
// nothing, so the descriptor goes through the supervisor, which acts as
// the run's descriptor broker:
//
//	sender                         supervisor                    receiver
//	encode: the object becomes
//	  an extension value (type 73)
//	  with a token placeholder
//	req put n + SCM_RIGHTS ------> holds the n descriptors
//	  <--------------------------- ok put <token>...
//	tokens written into the body,
//	the body sent (queue ring) -----------------------------------> decode: extension 73
//	the sender's copy closed                 <------------------- req take <token>
//	  (unless {keep = true})       ok take + SCM_RIGHTS --------> a working object
//
// A token is taken once; what nobody takes (a message never received, a
// send that failed) is closed when the run ends. A message on a socket
// connection (c:send) cannot carry a descriptor: the encoder refuses it
// with an error saying so, and a body received from a socket never takes
// one (the decoder refuses the extension there).

// extDescriptor is the MessagePack extension type of a descriptor in a
// body ('I'; a body from a socket refuses it as any other extension). Its
// payload:
//
//	0  1  what it is: passPipe, passFifo, passConn, passListener
//	1  1  the roles held: bit 0 read, bit 1 write
//	2  4  the declaration index it came from (-1: none), big-endian
//	6  1  n, the descriptors (1 or 2)
//	7  8n their tokens, big-endian
//	   1+ the socket kind ("tcp", "unix", "udp"), length first
//	   2+ its address, length (big-endian u16) first
//	   .. its description (`tcp connection accepted on ...`): the rest
const extDescriptor = 73

const (
	passPipe byte = 1 + iota
	passFifo
	passConn
	passListener
)

// passable is an object whose descriptors can travel in a message.
type passable interface {
	// passOut says what travels, or why it cannot now.
	passOut() (passed, error)
	// passClose closes the sender's copy once the message went.
	passClose()
}

type passed struct {
	kind, roles byte
	obj         int32
	files       []*os.File
	sock, addr  string
	what        string
}

// passList collects the descriptors of one body as it is encoded.
type passList struct {
	objs   []passable
	files  []*os.File
	at     []int    // where in the body each file's token goes
	tokens []uint64 // the supervisor's tokens for them
}

func (p *passList) reset() {
	if len(p.objs) == 0 && len(p.files) == 0 && len(p.at) == 0 && len(p.tokens) == 0 {
		return // every message's case: nothing passed, nothing to store
	}
	clear(p.objs)
	clear(p.files)
	p.objs, p.files, p.at, p.tokens = p.objs[:0], p.files[:0], p.at[:0], p.tokens[:0]
}

// descriptor encodes a passable object as an extension value with token
// placeholders, and notes its files.
func (e *bodyEncoder) descriptor(o passable, name fmt.Stringer) error {
	if e.pass == nil {
		return &encodeError{what: fmt.Sprintf("%s is a descriptor, and a message on a socket connection cannot carry one (send it to a process with ipc.send, to a mailbox, or as ipc.spawn args)", name)}
	}
	p, err := o.passOut()
	if err != nil {
		return &encodeError{what: err.Error()}
	}
	if len(p.sock) > 255 || len(p.addr) > 65535 {
		return &encodeError{what: fmt.Sprintf("%s: address too long to pass", name)}
	}
	payload := []byte{p.kind, p.roles, 0, 0, 0, 0, byte(len(p.files))}
	binary.BigEndian.PutUint32(payload[2:], uint32(p.obj))
	payload = append(payload, make([]byte, 8*len(p.files))...)
	payload = append(payload, byte(len(p.sock)))
	payload = append(payload, p.sock...)
	payload = binary.BigEndian.AppendUint16(payload, uint16(len(p.addr)))
	payload = append(payload, p.addr...)
	payload = append(payload, p.what...)
	if err := e.enc.EncodeExtHeader(extDescriptor, len(payload)); err != nil {
		return err
	}
	start := e.n
	e.Write(payload)
	for i := range p.files {
		e.pass.at = append(e.pass.at, start+7+8*i)
	}
	e.pass.files = append(e.pass.files, p.files...)
	e.pass.objs = append(e.pass.objs, o)
	return nil
}

// encodePassing encodes body for a message that may carry descriptors
// and hands those to the supervisor, writing their tokens into the bytes
// returned (valid until the next encode). list says, after a send that
// went, whose copies to close.
// to is the receiving process's slot (NoHolder for a mailbox's).
func (m *messenger) encodePassing(body lua.LValue, typeLen, to int) ([]byte, *passList, error) {
	pl := &m.passing
	if s, ok := body.(lua.LString); ok && len(pl.objs) == 0 && len(pl.files) == 0 {
		// A string carries no descriptor: the common body, without the
		// list's bookkeeping around it.
		b, err := m.encoder().encodeString(string(s), typeLen)
		return b, pl, err
	}
	pl.reset()
	m.encoder().pass = pl
	b, err := m.encoder().encode(body, typeLen)
	m.encoder().pass = nil
	if err != nil || len(pl.files) == 0 {
		return b, pl, err
	}
	if m.env.Broker == nil {
		return nil, pl, errors.New("descriptors travel between the run's processes: the supervisor's top level cannot send one")
	}
	if to == parentSlot {
		return nil, pl, errors.New("descriptors travel between the run's processes: the supervisor (\"main\") cannot receive one")
	}
	if len(pl.files) > ipc.MaxPassedFDs {
		return nil, pl, fmt.Errorf("%d descriptors in one message, at most %d", len(pl.files), ipc.MaxPassedFDs)
	}
	tokens, err := m.env.Broker.PutFiles(pl.files, to)
	if err != nil {
		return nil, pl, fmt.Errorf("passing descriptors: %v", err)
	}
	pl.tokens = append(pl.tokens, tokens...)
	for i, t := range tokens {
		binary.BigEndian.PutUint64(b[pl.at[i]:], t)
	}
	return b, pl, nil
}

// closePassed closes the sender's copies of what a message carried.
func (p *passList) closePassed() {
	for _, o := range p.objs {
		o.passClose()
	}
	p.reset()
}

// messengerOf returns the Lua state's messenger (the codec and the inboxes).
func messengerOf(L *lua.LState) *messenger {
	reg := L.Get(lua.RegistryIndex).(*lua.LTable)
	ud, ok := reg.RawGetString(messengerKey).(*lua.LUserData)
	if !ok {
		L.RaiseError("message passing is not set up")
	}
	return ud.Value.(*messenger)
}

// encodeFiles encodes ipc.spawn's args (a copy), descriptors passed; the
// objects whose copies to close once the spawn went are in the list.
func (e *Env) encodeFiles(L *lua.LState, v lua.LValue) ([]byte, *passList, error) {
	m := messengerOf(L)
	b, pl, err := m.encodePassing(v, 0, NoHolder) // the spawn names the holder
	if err != nil {
		return nil, pl, err
	}
	return append([]byte(nil), b...), pl, nil
}

// decodeFiles decodes a spawned process's args.
func (e *Env) decodeFiles(L *lua.LState, b []byte) (lua.LValue, error) {
	return messengerOf(L).decoder().decode(L, b)
}

// passedObject makes the object a descriptor extension describes, taking
// its descriptors from the supervisor.
func (m *messenger) passedObject(L *lua.LState, b []byte) (lua.LValue, error) {
	e := m.env
	if len(b) < 8 {
		return nil, errors.New("a descriptor value too short")
	}
	kind, roles, obj, n := b[0], b[1], int32(binary.BigEndian.Uint32(b[2:])), int(b[6])
	rest := b[7:]
	if len(rest) < 8*n+1 || n < 1 || n > 2 {
		return nil, errors.New("a descriptor value too short")
	}
	tokens := rest[:8*n]
	rest = rest[8*n:]
	sl := int(rest[0])
	if len(rest) < 1+sl+2 {
		return nil, errors.New("a descriptor value too short")
	}
	sock := string(rest[1 : 1+sl])
	rest = rest[1+sl:]
	al := int(binary.BigEndian.Uint16(rest))
	if len(rest) < 2+al {
		return nil, errors.New("a descriptor value too short")
	}
	addr, what := string(rest[2:2+al]), string(rest[2+al:])
	if e.Broker == nil {
		return nil, fmt.Errorf("%s: a descriptor sent to the supervisor cannot be received (send descriptors between processes)", what)
	}
	var files []*os.File
	for i := 0; i < n; i++ {
		f, err := e.Broker.TakeFile(binary.BigEndian.Uint64(tokens[8*i:]))
		if err != nil {
			ipc.CloseFiles(files)
			return nil, fmt.Errorf("%s: %v", what, err)
		}
		files = append(files, f)
	}
	var decl *Decl
	if obj >= 0 && int(obj) < len(e.Decls) {
		decl = e.Decls[obj]
	} else {
		obj = -1
	}
	fail := func(err error) (lua.LValue, error) {
		ipc.CloseFiles(files)
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	switch kind {
	case passPipe:
		p := &pipe{decl: decl}
		p.what, p.obj, p.tdecl, p.slot = what, obj, decl, e.Slot
		var r, w *os.File
		i := 0
		if roles&1 != 0 {
			r = files[i]
			i++
		}
		if roles&2 != 0 && i < len(files) {
			w = files[i]
		}
		var err error
		if p.r, err = p.newStreamEnd("pipe", r); err == nil {
			p.w, err = p.newStreamEnd("pipe", w)
		}
		if err != nil {
			p.close()
			return fail(err)
		}
		return newUserData(L, pipeClass, p), nil
	case passFifo:
		s := &fifoStream{}
		s.what, s.obj, s.tdecl, s.slot = what, obj, decl, e.Slot
		st, err := s.newStreamEnd("fifo", files[0])
		if err != nil {
			return fail(err)
		}
		if roles&1 != 0 {
			s.r = st
		} else {
			s.w = st
		}
		return newUserData(L, fifoStreamClass, s), nil
	case passConn:
		st, err := ipc.NewStream(sock, what, files[0])
		if err != nil {
			return fail(err)
		}
		class := connClass
		if sock == "udp" {
			class = udpConnClass
		}
		return newUserData(L, class, newConn(e, what, obj, st)), nil
	case passListener:
		l, err := ipc.OpenListener(files[0], sock)
		if err != nil {
			return fail(err)
		}
		if sock == "unix" && addr != "" {
			l.SetPath(addr)
		}
		l.SetStatus(e.Slot, obj)
		if decl == nil {
			decl = &Decl{Index: -1, Kind: "listener", Name: addr, Line: "(passed)"}
		}
		return newUserData(L, listenerClass, &listener{kobject: kobject{decl: decl, what: what}, kind: sock, l: l, env: e}), nil
	}
	return fail(fmt.Errorf("unknown descriptor kind %d", kind))
}

// What each kind passes.

func (p *pipe) passOut() (passed, error) {
	if p.beforeRead == nil && p.beforeWrite == nil && p.r == nil && p.w == nil {
		return passed{}, fmt.Errorf("%s: this process holds no end of it", p.what)
	}
	if n := p.buffered(); n > 0 {
		return passed{}, fmt.Errorf("%s: %d bytes were read ahead and not consumed; pass the pipe before reading from it", p.what, n)
	}
	out := passed{kind: passPipe, obj: p.obj, what: p.what}
	if p.r != nil {
		out.roles |= 1
		out.files = append(out.files, p.r.File())
	}
	if p.w != nil {
		out.roles |= 2
		out.files = append(out.files, p.w.File())
	}
	if out.files == nil {
		return passed{}, fmt.Errorf("%s: this process holds no end of it", p.what)
	}
	return out, nil
}

func (p *pipe) passClose() { p.close() }

func (s *fifoStream) passOut() (passed, error) {
	if s.buffered() > 0 {
		return passed{}, fmt.Errorf("%s: bytes were read ahead and not consumed; pass it before reading from it", s.what)
	}
	out := passed{kind: passFifo, obj: s.obj, what: s.what}
	if s.r != nil {
		out.roles, out.files = 1, []*os.File{s.r.File()}
	} else if s.w != nil {
		out.roles, out.files = 2, []*os.File{s.w.File()}
	} else {
		return passed{}, fmt.Errorf("%s: it is closed", s.what)
	}
	return out, nil
}

func (s *fifoStream) passClose() { s.close() }

func (c *conn) passOut() (passed, error) {
	if c.r == nil && c.w == nil {
		return passed{}, fmt.Errorf("%s: it is closed", c.what)
	}
	if c.buffered() > 0 {
		return passed{}, fmt.Errorf("%s: bytes were read ahead and not consumed; pass the connection before reading from it", c.what)
	}
	return passed{kind: passConn, roles: 3, obj: c.obj, what: c.what, sock: c.st.Kind(), files: []*os.File{c.st.File()}}, nil
}

func (c *conn) passClose() { c.close() }

func (l *listener) passOut() (passed, error) {
	if l.l == nil {
		return passed{}, fmt.Errorf("%s: not available while checking a script", l.what)
	}
	return passed{kind: passListener, obj: int32(l.decl.Index), what: l.what, sock: l.kind, addr: l.l.Address(), files: []*os.File{l.l.File()}}, nil
}

func (l *listener) passClose() { l.l.Close() }
