package bindings

import (
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

// ipc.select maps the Lua objects it is given onto an ipc.Selector, which
// does the waiting (on queue futex words and descriptors at once; see
// ipc/select_linux.go): message objects (mailboxes, ipc.inbox, see
// selectable.go) give it their queue, streams, listeners and kernel message
// queues their descriptor. Each round tries every object without blocking,
// in turn from the one after the last chosen (so a busy object cannot
// starve the others), then sleeps in the Selector until something changes.

// selectState is what ipc.select reuses from one call to the next.
type selectState struct {
	items []selectItem
	sel   ipc.Selector
	next  int // where the next scan starts

	t0      int64 // traced: when the select began
	takeObj int32 // traced: the queue object being tried
}

type selectItem struct {
	v  lua.LValue // the object as the script passed it
	q  queueSelectable
	f  fdSelectable
	fi int // f's index in the selector
}

// selectPreparer is implemented by objects that must be set up before
// select asks them for a queue (ipc.inbox maps the inbox on first use).
type selectPreparer interface{ selectPrepare(L *lua.LState) }

// selectObject gives the status table's object id of a select's first
// object, for deadlock reports.
type selectObject interface{ selectObj() int32 }

// ipc.select(list, [{timeout =, block =}]) -> src, value | nil, nil, err
// For a message object, value is the message it received; for a stream or
// listener, value is nil and src, the very object passed in, is ready to
// read or accept. err: "timeout", "empty" (block = false and nothing
// ready); src, nil, "closed" when src is a closed and drained mailbox.
func (m *messenger) luaSelect(L *lua.LState) int {
	list := L.CheckTable(1)
	w := WaitOpts(L, 2)
	m.mustRun(L, "ipc.select")
	s := &m.sel
	defer s.release()
	if m.env.Trace != nil {
		s.t0 = trace.Now()
	}
	s.collect(L, list)

	if len(s.items) == 0 {
		switch {
		case w.NonBlocking:
			return m.selectResult(L, nil, nil, ipc.ErrEmpty)
		case w.Timeout > 0 && !m.afterRun():
			m.env.Slot.SetState(ipc.StateSleeping)
			time.Sleep(w.Timeout)
			m.env.Slot.SetState(ipc.StateRunning)
			return m.selectResult(L, nil, nil, ipc.ErrTimeout)
		case w.Timeout > 0:
			return m.selectResult(L, nil, nil, ipc.ErrTimeout)
		}
		L.RaiseError("ipc.select: the list is empty: nothing could ever be ready")
	}
	s.sel.Begin()
	obj := int32(-1)
	if o, ok := s.items[0].q.(selectObject); ok {
		obj = o.selectObj()
	}
	deadline := w.Deadline()
	for {
		s.sel.Snapshot()
		if it, v, err, ok := s.try(L); ok {
			return m.selectResult(L, it, v, err)
		}
		if w.NonBlocking {
			return m.selectResult(L, nil, nil, ipc.ErrEmpty)
		}
		if m.afterRun() {
			return m.selectResult(L, nil, nil, ipc.ErrClosed) // every process has exited
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return m.selectResult(L, nil, nil, ipc.ErrTimeout)
		}
		m.env.Slot.Enter(ipc.OpSelect, obj, 0, !deadline.IsZero())
		err := s.sel.Wait(deadline)
		m.env.Slot.Leave()
		if err == ipc.ErrTimeout {
			return m.selectResult(L, nil, nil, ipc.ErrTimeout)
		}
		if err != nil {
			L.RaiseError("ipc.select: %v", err)
		}
	}
}

// selectResult pushes src, value or nil, nil, err (src, nil, err when
// the object it=src reported err).
func (m *messenger) selectResult(L *lua.LState, it *selectItem, v lua.LValue, err error) int {
	if m.env.Trace != nil && (it == nil || it.q == nil || err != nil) {
		m.traceSelect(L, it, err) // a message taken was recorded by take
	}
	if it == nil {
		L.Push(lua.LNil)
	} else {
		L.Push(it.v)
	}
	if v == nil {
		v = lua.LNil
	}
	L.Push(v)
	if err == nil {
		return 2
	}
	switch err {
	case ipc.ErrTimeout, ipc.ErrEmpty, ipc.ErrFull, ipc.ErrClosed, ipc.ErrEOF:
		L.Push(lua.LString(err.Error()))
		return 3
	}
	L.RaiseError("ipc.select: %v", err)
	return 0
}

// collect reads the list into s.items.
func (s *selectState) collect(L *lua.LState, list *lua.LTable) {
	s.items = s.items[:0]
	s.sel.Reset()
	n := list.MaxN()
	for i := 1; i <= n; i++ {
		v := list.RawGetInt(i)
		var obj any
		if ud, ok := v.(*lua.LUserData); ok {
			obj = ud.Value
		}
		if p, ok := obj.(selectPreparer); ok {
			p.selectPrepare(L)
		}
		switch o := obj.(type) {
		case queueSelectable:
			q := o.selectQueue()
			if q == nil {
				L.RaiseError("ipc.select: item %d (%s): not available while checking a script (nothing is created)", i, typeName(v))
			}
			s.items = append(s.items, selectItem{v: v, q: o, fi: -1})
			s.sel.AddQueue(q)
		case fdSelectable:
			fd := o.selectFd()
			if fd < 0 {
				L.RaiseError("ipc.select: item %d (%s): this process cannot read from it", i, L.ToStringMeta(v).String())
			}
			s.items = append(s.items, selectItem{v: v, f: o, fi: s.sel.AddFd(fd)})
		default:
			what := "nil (the list must not have holes)"
			if v != lua.LNil {
				what = "a " + typeName(v)
			}
			L.RaiseError("ipc.select: item %d is %s: select waits on mailboxes, ipc.inbox, pipe and FIFO read ends, message queues, sockets and listeners", i, what)
		}
	}
	if s.sel.Queues() > ipc.MaxSelectQueues {
		L.RaiseError("ipc.select: %d mailboxes and inboxes: at most %d at once", s.sel.Queues(), ipc.MaxSelectQueues)
	}
}

// release undoes what a select registered, on every way out (a Lua error
// included).
func (s *selectState) release() {
	s.sel.End()
	clear(s.items) // let the Lua values go
	s.items = s.items[:0]
}

// try takes from the first ready object, in turn; ok is false when none
// was ready.
func (s *selectState) try(L *lua.LState) (*selectItem, lua.LValue, error, bool) {
	if err := s.sel.PollFds(); err != nil {
		return nil, nil, err, true
	}
	n := len(s.items)
	start := s.next % n
	for j := range n {
		k := (start + j) % n
		it := &s.items[k]
		var v lua.LValue
		var ok bool
		var err error
		if it.q != nil {
			if o, isObj := it.q.(selectObject); isObj {
				s.takeObj = o.selectObj()
			}
			v, ok, err = it.q.selectTake(L)
		} else if it.f.selectBuffered() || s.sel.FdReady(it.fi) {
			v, ok, err = it.f.selectTake(L)
		}
		if ok || err != nil {
			s.next = k + 1
			return it, v, err, true
		}
	}
	return nil, nil, nil, false
}

// traceSelect records a select that did not take a message: a stream or
// listener that is ready, or an outcome (timeout, empty, closed).
func (m *messenger) traceSelect(L *lua.LState, it *selectItem, err error) {
	e := trace.Event{Op: trace.OpSelect, Where: traceWhere(L), Time: m.sel.t0, End: trace.Now(), Outcome: outcomeOf(err)}
	if it != nil {
		e.Label = L.ToStringMeta(it.v).String() + " ready"
	}
	m.env.Trace.Record(&e)
}
