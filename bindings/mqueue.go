package bindings

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

const mqueueClass = "ipc.mqueue"

// mqueue is a POSIX message queue (ipc.Mqueue): up to capacity messages of
// at most msgsize bytes, received highest priority first.
//
// The parent creates it as /ipcscript.<runid>.<name> (recorded in the run
// directory, so a later run removes it if this one is killed) and hands the
// descriptor to every child. An anonymous queue (the default) loses its
// name at once: the descriptors keep it alive and nothing is left in
// /dev/mqueue, whatever happens to the run. A public queue keeps its name,
// q.name, for external programs (mq_open) until the run ends.
type mqueue struct {
	kobject
	q      *ipc.Mqueue // nil while checking
	public bool
	closed bool // q:close() in this process
	opened bool // opened from an inherited descriptor (a process, not the supervisor)
}

func openMqueue(L *lua.LState, mod *lua.LTable, env *Env) {
	env.registerClassOf(L, mqueueClass, func() map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			"send":    mqueueSend,
			"receive": mqueueReceive,
			"len":     mqueueLen,
			"close":   mqueueClose,
		}
	}, mqueueField, "name", "capacity", "msgsize")
	env.setFunc(L, mod, "mqueue", env.luaMqueue)
}

// ipc.mqueue(name, [{capacity = 10, msgsize = 8192, public = false}]) -> q
// The kernel's limits (/proc/sys/fs/mqueue/msg_max and msgsize_max,
// queues_max, RLIMIT_MSGQUEUE) are checked here, before any process runs,
// and `ipcscript check` reports a queue beyond them.
func (e *Env) luaMqueue(L *lua.LState) int {
	name := L.CheckString(1)
	opts := optTable(L, 2)
	capacity := optInt(L, opts, "capacity", 10)
	msgsize := optInt(L, opts, "msgsize", 8192)
	public := optBool(L, opts, "public", false)
	d := e.declareObject(L, "mqueue", name, fmt.Sprintf("capacity=%d msgsize=%d public=%t", capacity, msgsize, public))
	q := &mqueue{kobject: kobject{decl: d, what: d.Describe()}, public: public}
	d.Object = q
	if err := ipc.CheckMqueueLimits(name, capacity, msgsize); err != nil {
		L.RaiseError("%s", err.Error())
	}
	made := e.Make(L, d, MakerFuncs{
		CreateFn: func(*Decl) error { return q.create(e, name, capacity, msgsize) },
		OpenFn: func(d *Decl) (err error) {
			kname := ""
			if public {
				kname = ipc.MqueueKernelName(e.Manifest.RunID, name)
			}
			q.q, err = ipc.OpenMqueue(d.File("q"), name, kname)
			q.opened = err == nil
			return err
		},
	})
	if made {
		q.q.SetStatus(e.Slot, int32(d.Index))
	}
	L.Push(newUserData(L, mqueueClass, q))
	return 1
}

func (q *mqueue) create(e *Env, name string, capacity, msgsize int) error {
	rd, err := e.RunDir()
	if err != nil {
		return fmt.Errorf("%s: %w", q.what, err)
	}
	kname, err := rd.MqueueName(name)
	if err != nil {
		return err
	}
	if q.q, err = ipc.NewMqueue(name, kname, capacity, msgsize); err != nil {
		return err
	}
	q.decl.AddFile("q", q.q.File(), "")
	if !q.public {
		return q.q.Unlink()
	}
	return nil
}

// Release closes the parent's descriptor and removes a public queue's name
// at the end of the run.
func (q *mqueue) Release() {
	if q.q == nil {
		return
	}
	if q.public {
		q.q.Unlink()
	}
	q.q.Close()
}

// q.name is the kernel name of a public queue ("/ipcscript.<runid>.orders"),
// nil for an anonymous one; q.capacity and q.msgsize are its limits.
func mqueueField(L *lua.LState, v any, key string) lua.LValue {
	q := v.(*mqueue)
	if q.q == nil {
		return lua.LNil
	}
	switch key {
	case "name":
		if q.public {
			return lua.LString(q.q.KernelName())
		}
	case "capacity":
		return lua.LNumber(q.q.Capacity())
	case "msgsize":
		return lua.LNumber(q.q.MsgSize())
	}
	return lua.LNil
}

func checkMqueue(L *lua.LState) *mqueue {
	q := checkClass[*mqueue](L, 1, "mqueue")
	if q.q == nil {
		q.notHere(L)
	}
	if q.closed {
		L.RaiseError("%s: closed in this process (q:close())", q.what)
	}
	return q
}

// q:close()
// Closes this process's descriptor of the queue (mq_close). Later calls on
// q in this process raise; the other processes keep theirs, and the queue
// with what it holds lives until the run ends. Unlike box:close, nobody
// else is told: a POSIX queue has no end-of-messages mark. Closing twice
// does nothing.
func mqueueClose(L *lua.LState) int {
	q := checkClass[*mqueue](L, 1, "mqueue")
	if q.q == nil {
		q.notHere(L)
	}
	if !q.opened {
		L.RaiseError("%s: q:close() is for a process body (the supervisor holds the queue for the processes until the run ends)", q.what)
	}
	if !q.closed {
		q.closed = true
		q.q.Close()
	}
	return 0
}

// q:len() -> n: the messages queued now (mq_getattr's mq_curmsgs; a
// snapshot).
func mqueueLen(L *lua.LState) int {
	L.Push(lua.LNumber(checkMqueue(L).q.Len()))
	return 1
}

// q:send(bytes, [{priority = 0, timeout =, block =}]) -> true | nil, "full" | nil, "timeout"
// Waits for room while the queue is full. 0 <= priority < 32768.
func mqueueSend(L *lua.LState) int {
	q := checkMqueue(L)
	b := luaBytes(L, 2)
	opts := optTable(L, 3)
	var w ipc.WaitOpts
	if opts != nil {
		w = waitOptsFrom(L, opts)
	}
	prio := optInt(L, opts, "priority", 0)
	if prio < 0 {
		L.RaiseError("%s: send: priority %d must be >= 0", q.what, prio)
	}
	rec := q.decl.Trace
	var t0 int64
	if rec != nil {
		t0 = trace.Now()
		traceRelease(rec, q.decl)
	}
	err := q.q.Send(b, uint(prio), w)
	if rec != nil {
		rec.Emit(&trace.Event{Op: trace.OpSend, Kind: q.decl.Kind, Object: q.decl.Name, Where: traceWhere(L), Time: t0, End: trace.Now(),
			Len: int64(len(b)), Outcome: outcomeOf(err), Fields: map[string]any{"priority": prio}})
	}
	if err != nil {
		return Outcome(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}

// q:receive([{timeout =, block =}]) -> bytes, priority | nil, "empty" | nil, "timeout"
// The oldest message of the highest priority.
func mqueueReceive(L *lua.LState) int {
	q := checkMqueue(L)
	var t0 int64
	if q.decl.Trace != nil {
		t0 = trace.Now()
	}
	b, prio, err := q.q.Receive(WaitOpts(L, 2))
	if q.decl.Trace != nil {
		q.traceReceive(L, trace.OpReceive, t0, len(b), int(prio), err)
	}
	if err != nil {
		return Outcome(L, err)
	}
	L.Push(lua.LString(b))
	L.Push(lua.LNumber(prio))
	return 2
}

// select: the queue is ready when its descriptor is readable; select
// receives the message and returns its bytes (not its priority).
func (q *mqueue) selectFd() int { return q.q.Fd() }
func (q *mqueue) selectPrepare(L *lua.LState) {
	if q.closed {
		L.RaiseError("%s: closed in this process (q:close())", q.what)
	}
}
func (q *mqueue) selectBuffered() bool { return false }
func (q *mqueue) selectTake(L *lua.LState) (lua.LValue, bool, error) {
	var t0 int64
	if q.decl.Trace != nil {
		t0 = trace.Now()
	}
	b, prio, err := q.q.Receive(ipc.WaitOpts{NonBlocking: true})
	if q.decl.Trace != nil && err != ipc.ErrEmpty {
		q.traceReceive(L, trace.OpSelect, t0, len(b), int(prio), err)
	}
	switch err {
	case nil:
		return lua.LString(b), true, nil
	case ipc.ErrEmpty: // another process took it first
		return lua.LNil, false, nil
	}
	return lua.LNil, false, err
}

var _ fdSelectable = (*mqueue)(nil)

// traceReceive records a receive. A kernel queue's messages carry no
// clock (other programs may read them), so the queue is a release/acquire
// object: a receive picks up the clocks of every send before it, and its
// cause is the latest send.
func (q *mqueue) traceReceive(L *lua.LState, op string, t0 int64, n, prio int, err error) {
	rec := q.decl.Trace
	e := trace.Event{Op: op, Kind: q.decl.Kind, Object: q.decl.Name, Where: traceWhere(L), Time: t0, End: trace.Now(), Outcome: outcomeOf(err)}
	if err == nil {
		e.Len = int64(n)
		e.Fields = map[string]any{"priority": prio}
		if c, ok := rec.Board().Acquire(q.decl.Index, rec); ok {
			e.Cause = &c
		}
	}
	rec.Record(&e)
}
