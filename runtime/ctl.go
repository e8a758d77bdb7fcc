package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/ipc"
)

// Requests on the control socket. Besides its one result message at the
// end, a child may ask the supervisor, while it runs, for what only the
// supervisor can do or knows (protocol.go has the diagram). A request is
// one datagram, `req <verb> <fields>`, and the supervisor's event loop
// answers it with one datagram, `ok ...` or `error "<quoted>"`, carrying
// descriptors (SCM_RIGHTS) where the verb says so:
//
//	req spawn "<template>" "<name>" "<tokens>" "<clock>"\n<args> -> ok proc ... + the new inbox
//	                                             (clock: the spawner's, when the run is traced)
//	req proc "<name>" <slot>                  -> ok proc "<name>" "<group>" <index> <slot> <inbox> <serial>
//	                                             [ended <exit> "<signal>" "<error>"] [+ inbox]
//	req put <to> + descriptors                -> ok put <token>...
//	req take <token>                          -> ok take + the descriptor
//
// A child has one request in flight at a time (its Lua state is one
// goroutine); the reply is the next datagram it receives. A child killed
// mid-request costs nothing: the reply goes to a closed socket, and what
// it spawned runs on, supervised like any other process.

const (
	reqPrefix = "req "
	// maxCtlMessage bounds one datagram: a child's result (an error of
	// at most 50000 bytes and a traceback, quoted) or a request (spawn
	// args are at most 16 KiB, raw).
	maxCtlMessage = 1 << 16
)

// ctlClient is a child's side of the control socket: the parent check
// (EOF: the supervisor is gone) and the requests of bindings.Broker.
type ctlClient struct {
	fd      int
	mu      sync.Mutex
	replies chan ctlReply
	// buf is on the heap, not on loop's stack: a 64 KiB stack buffer
	// grew that goroutine's stack to 128 KiB and zeroed it in every child
	// at start; a fresh heap span is zero already, and only the pages a
	// datagram fills are touched. loop makes it when it first runs: with
	// one P, a child that never waits ends before that (3 page faults of
	// its start, for a 64 KiB span it never used).
	buf []byte
}

type ctlReply struct {
	b     []byte
	files []*os.File
}

func newCtlClient(fd int) *ctlClient {
	return &ctlClient{fd: fd, replies: make(chan ctlReply, 1)}
}

// loop reads the control socket until EOF, handing replies to call. EOF
// (or an error) means the supervisor is gone: this process ends.
func (c *ctlClient) loop() {
	c.buf = make([]byte, maxCtlMessage)
	buf := c.buf
	for {
		n, files, err := ipc.RecvFDs(c.fd, buf)
		if err != nil || n == 0 {
			endChildDescendants()
			os.Exit(ExitFailed)
		}
		c.replies <- ctlReply{b: append([]byte(nil), buf[:n]...), files: files}
	}
}

// call sends one request and waits for its reply.
func (c *ctlClient) call(req []byte, files []*os.File) (ctlReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var fds []int
	for _, f := range files {
		fd, err := ipc.DupFD(f)
		if err != nil {
			closeFDs(fds)
			return ctlReply{}, err
		}
		fds = append(fds, fd)
	}
	err := ipc.SendFDs(c.fd, req, fds)
	closeFDs(fds)
	if err != nil {
		return ctlReply{}, fmt.Errorf("asking the supervisor: %v", err)
	}
	r := <-c.replies
	if msg, ok := strings.CutPrefix(string(r.b), "error "); ok {
		ipc.CloseFiles(r.files)
		if s, err := strconv.Unquote(msg); err == nil {
			msg = s
		}
		return ctlReply{}, errors.New(msg)
	}
	return r, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		os.NewFile(uintptr(fd), "").Close()
	}
}

// procReply decodes `ok proc "<name>" "<group>" <index> <slot> <inbox>
// <serial> [ended <exit> "<signal>" "<error>"]`.
func procReply(r ctlReply) (bindings.SpawnedProc, *os.File, error) {
	f := ctlFields(strings.TrimPrefix(string(r.b), "ok proc "))
	if len(f) != 6 && (len(f) != 10 || f[6] != "ended") {
		ipc.CloseFiles(r.files)
		return bindings.SpawnedProc{}, nil, fmt.Errorf("malformed reply %q", r.b)
	}
	sp := bindings.SpawnedProc{Name: f[0], Group: f[1], Index: atoi(f[2]), Slot: atoi(f[3]), Inbox: atoi(f[4]), Serial: atoi(f[5])}
	if len(f) == 10 {
		sp.Ended, sp.Exit, sp.Signal, sp.Error = true, atoi(f[7]), f[8], f[9]
	}
	var inbox *os.File
	if len(r.files) > 0 {
		inbox = r.files[0]
		ipc.CloseFiles(r.files[1:])
	}
	return sp, inbox, nil
}

func (c *ctlClient) Spawn(template, name string, args []byte, tokens []uint64, clock []byte) (bindings.SpawnedProc, *os.File, error) {
	ts := make([]string, len(tokens))
	for i, t := range tokens {
		ts[i] = strconv.FormatUint(t, 10)
	}
	req := append(ctlRequest("spawn", strconv.Quote(template), strconv.Quote(name), strconv.Quote(strings.Join(ts, " ")), strconv.Quote(string(clock))), '\n')
	req = append(req, args...) // raw: the rest of the datagram
	r, err := c.call(req, nil)
	if err != nil {
		return bindings.SpawnedProc{}, nil, err
	}
	return procReply(r)
}

func (c *ctlClient) Lookup(name string, slot int) (bindings.SpawnedProc, *os.File, error) {
	r, err := c.call(ctlRequest("proc", strconv.Quote(name), strconv.Itoa(slot)), nil)
	if err != nil {
		return bindings.SpawnedProc{}, nil, err
	}
	return procReply(r)
}

func (c *ctlClient) PutFiles(fs []*os.File, to int) ([]uint64, error) {
	r, err := c.call(ctlRequest("put", strconv.Itoa(to)), fs)
	if err != nil {
		return nil, err
	}
	ipc.CloseFiles(r.files)
	var tokens []uint64
	for _, t := range ctlFields(strings.TrimPrefix(string(r.b), "ok put")) {
		n, err := strconv.ParseUint(t, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("malformed reply %q", r.b)
		}
		tokens = append(tokens, n)
	}
	if len(tokens) != len(fs) {
		return nil, fmt.Errorf("malformed reply %q", r.b)
	}
	return tokens, nil
}

func (c *ctlClient) TakeFile(token uint64) (*os.File, error) {
	r, err := c.call(ctlRequest("take", strconv.FormatUint(token, 10)), nil)
	if err != nil {
		return nil, err
	}
	if len(r.files) != 1 {
		ipc.CloseFiles(r.files)
		return nil, fmt.Errorf("the supervisor sent %d descriptors for one", len(r.files))
	}
	return r.files[0], nil
}

func ctlRequest(verb string, fields ...string) []byte {
	return []byte(reqPrefix + verb + " " + strings.Join(fields, " "))
}

// ctlFields splits space-separated fields, each a quoted string or a bare
// token.
func ctlFields(s string) []string {
	var out []string
	for s = strings.TrimLeft(s, " "); s != ""; s = strings.TrimLeft(s, " ") {
		if s[0] == '"' {
			pre, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil
			}
			v, _ := strconv.Unquote(pre)
			out = append(out, v)
			s = s[len(pre):]
			continue
		}
		tok, rest, _ := strings.Cut(s, " ")
		out = append(out, tok)
		s = rest
	}
	return out
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// The supervisor's side.

// request is one request read from a child's control socket.
type request struct {
	c     *child
	b     []byte
	files []*os.File
}

// readCtl reads the child's control socket until EOF (the child's exit):
// requests go to the event loop, the last other message is the result.
// Then it closes ctlEnd.
func (sup *supervisor) readCtl(c *child) {
	defer close(c.ctlEnd)
	rc, err := c.ctl.SyscallConn()
	if err != nil {
		return
	}
	for {
		// A buffer only while a message is there to read: a child that
		// sends nothing but its result held a 64 KiB buffer of its own
		// for its whole life, which in a 64-process launch made the
		// supervisor collect garbage (its GC was 17% of its CPU).
		if rc.Read(ctlReadable) != nil {
			return
		}
		buf := ctlBufs.Get().(*[maxCtlMessage]byte)
		n, files, err := ipc.RecvFDsConn(rc, buf[:])
		if err != nil || n == 0 {
			ctlBufs.Put(buf)
			return
		}
		if !bytes.HasPrefix(buf[:n], []byte(reqPrefix)) {
			ipc.CloseFiles(files)
			c.result = decodeResult(buf[:n]) // copies
			ctlBufs.Put(buf)
			continue
		}
		r := request{c: c, b: append([]byte(nil), buf[len(reqPrefix):n]...), files: files}
		ctlBufs.Put(buf)
		select {
		case sup.requests <- r:
		case <-sup.over:
			ipc.CloseFiles(files)
		}
	}
}

// ctlBufs holds the buffers readCtl receives messages into.
var ctlBufs = sync.Pool{New: func() any { return new([maxCtlMessage]byte) }}

// ctlReadable, for RawConn.Read, waits until the control socket has a
// message or its EOF, consuming nothing (a peek of one byte).
func ctlReadable(fd uintptr) bool {
	var b [1]byte
	_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err != unix.EAGAIN
}

// serve answers one request (in the event loop).
func (sup *supervisor) serve(r request) {
	head, tail, _ := strings.Cut(string(r.b), "\n") // only spawn has a tail: its args
	verb, rest, _ := strings.Cut(head, " ")
	f := ctlFields(rest)
	var reply []byte
	var give []*os.File // sent with the reply, then closed when owned
	var owned bool
	fail := func(format string, args ...any) {
		reply = []byte("error " + strconv.Quote(fmt.Sprintf(format, args...)))
	}
	switch {
	case verb == "spawn" && len(f) == 4:
		if r.c.state != nil { // the spawner ended before its turn came
			break
		}
		var args []byte
		if tail != "" {
			args = []byte(tail)
		}
		p, err := sup.spawn(f[0], f[1], args, []byte(f[3]))
		if err != nil {
			for _, t := range ctlFields(f[2]) { // nobody will take the args' descriptors
				n, _ := strconv.ParseUint(t, 10, 64)
				if h, ok := sup.held[n]; ok {
					h.f.Close()
					delete(sup.held, n)
				}
			}
			fail("%v", err)
			break
		}
		for _, t := range ctlFields(f[2]) { // the args' descriptors are the instance's now
			n, _ := strconv.ParseUint(t, 10, 64)
			if h, ok := sup.held[n]; ok {
				h.to = p.Slot
				sup.held[n] = h
			}
		}
		reply, give = sup.procInfo(p)
	case verb == "proc" && len(f) == 2:
		p := sup.findProc(f[0], atoi(f[1]))
		if p == nil {
			fail("no process named %q", f[0])
			break
		}
		reply, give = sup.procInfo(p)
	case verb == "put" && len(f) == 1:
		reply = []byte("ok put")
		to := atoi(f[0])
		for _, file := range r.files {
			// Random, so that no process guesses another message's token.
			t := rand.Uint64()
			for _, taken := sup.held[t]; t == 0 || taken; _, taken = sup.held[t] {
				t = rand.Uint64()
			}
			if sup.ended(to) { // it can never take it
				file.Close()
			} else {
				sup.held[t] = held{f: file, to: to}
			}
			reply = append(reply, ' ')
			reply = strconv.AppendUint(reply, t, 10)
		}
		r.files = nil
	case verb == "take" && len(f) == 1:
		t, _ := strconv.ParseUint(f[0], 10, 64)
		h, ok := sup.held[t]
		if !ok {
			fail("descriptor %d was taken already, or its receiver ended (a message that carries a descriptor is received once)", t)
			break
		}
		delete(sup.held, t)
		reply, give, owned = []byte("ok take"), []*os.File{h.f}, true
	default:
		fail("unknown request %q", verb)
	}
	ipc.CloseFiles(r.files)
	if reply != nil {
		sup.reply(r.c, reply, give)
	}
	if owned {
		ipc.CloseFiles(give)
	}
}

// reply sends one reply; a requester that died meanwhile is ignored.
func (sup *supervisor) reply(c *child, b []byte, files []*os.File) {
	var fds []int
	for _, f := range files {
		if fd, err := ipc.DupFD(f); err == nil {
			fds = append(fds, fd)
		}
	}
	if rc, err := c.ctl.SyscallConn(); err == nil {
		ipc.SendFDsConn(rc, b, fds)
	}
	closeFDs(fds)
}

// procInfo is the reply that describes p, with its inbox.
func (sup *supervisor) procInfo(p *bindings.Process) ([]byte, []*os.File) {
	env := sup.s.env
	inbox := 0
	var files []*os.File
	for i, d := range env.Implicit {
		if d.Kind == "inbox" && d.Name == p.Name {
			inbox = -1 - i
			if f := d.File("mem"); f != nil {
				files = append(files, f)
			}
		}
	}
	b := fmt.Appendf(nil, "ok proc %q %q %d %d %d %d", p.Name, p.Group, p.Index, p.Slot, inbox, p.Serial)
	if c := sup.childOf(p); c != nil && (c.state != nil || c.err != nil) {
		pr := sup.processReport(c)
		b = fmt.Appendf(b, " ended %d %q %q", pr.Exit, pr.Signal, pr.Error)
	}
	return b, files
}

// childOf is the child of process p (nil before its launch).
func (sup *supervisor) childOf(p *bindings.Process) *child {
	return sup.byProc[p]
}

// releaseSpawned lets go of what the supervisor held for spawned process
// c once it has been reaped and reported: its inbox (its memory and
// descriptor; a process that still sends to it holds its own mapping and
// gets "closed"), and, once no message of it is queued, its slot.
func (sup *supervisor) releaseSpawned(c *child) {
	env := sup.s.env
	for _, d := range env.Implicit[sup.declaredImplicit:] {
		if d.Name == c.p.Name && d.Object != nil {
			if r, ok := d.Object.(bindings.Releaser); ok {
				r.Release() // closes the descriptor too
			}
			d.Files = nil
		}
	}
	env.SlotEnded(c.p)
	env.ReleaseSlots()
}

// findProc finds a process by name, or by slot when name is "".
func (sup *supervisor) findProc(name string, slot int) *bindings.Process {
	procs := sup.s.env.Procs
	for i := len(procs) - 1; i >= 0; i-- { // a slot's latest process
		if p := procs[i]; (name != "" && p.Name == name) || (name == "" && p.Slot == slot) {
			return p
		}
	}
	return nil
}

// spawn starts an instance of template tmpl, as ipc.spawn asked.
// clock is the spawner's (trace.Recorder.AppendClock; empty when the run
// is not traced): the cause of the instance's spawn event.
func (sup *supervisor) spawn(tmpl, name string, args, clock []byte) (*bindings.Process, error) {
	if sup.stopping {
		return nil, errors.New("the run is stopping")
	}
	env := sup.s.env
	env.ReleaseSlots()
	p, err := env.SpawnInstance(tmpl, name, args)
	if err != nil {
		return nil, err
	}
	c := sup.newChild(p, true)
	c.spawnClock = clock
	if err := sup.start(c); err != nil {
		return nil, sup.notStarted(c, err)
	}
	sup.wait(c)
	// Its inbox learns of the processes that ended before it existed and
	// whose slots nobody has taken since, so a receive from one of them
	// says "closed" rather than waiting forever.
	var inbox bindings.ExitObserver
	for _, d := range env.Implicit[sup.declaredImplicit:] {
		if o, ok := d.Object.(bindings.ExitObserver); ok && d.Name == p.Name {
			inbox = o
		}
	}
	if inbox != nil {
		for _, h := range env.SlotHolders() {
			if e := sup.childOf(h); h != nil && h != p && e != nil && (e.state != nil || e.err != nil) {
				inbox.ProcessExited(h)
			}
		}
	}
	return p, nil
}

// ended reports whether the process that had slot last has ended.
func (sup *supervisor) ended(slot int) bool {
	if hs := sup.s.env.SlotHolders(); slot >= 0 && slot < len(hs) {
		if c := sup.childOf(hs[slot]); c != nil {
			return c.state != nil || c.err != nil
		}
	}
	return false
}

// held is a descriptor a message carries, until its receiver takes it.
type held struct {
	f  *os.File
	to int // the slot of the one process that can take it, or bindings.NoHolder
}

// releaseHeld closes the descriptors that messages carried and nobody
// received: at the end of the run (all < 0), or those only process slot
// could take, once it has ended.
func (sup *supervisor) releaseHeld(slot int, all bool) {
	for t, h := range sup.held {
		if all || h.to == slot {
			h.f.Close()
			delete(sup.held, t)
		}
	}
}
