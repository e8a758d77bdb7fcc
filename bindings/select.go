package bindings

import (
	"encoding/binary"
	"os"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

// ipc.select waits on message objects (mailboxes, ipc.inbox: shared-memory
// queues, see selectable.go) and descriptors (pipe and FIFO read ends,
// sockets, listeners, kernel message queues) at once, without polling in a
// loop:
//
//  1. read every queue's futex word (registered as a waiting receiver, so
//     senders wake it),
//  2. try every object without blocking, in turn from the one after the
//     last chosen (so a busy object cannot starve the others),
//  3. sleep until a word changes: futex_waitv on the words when there are
//     only queues, poll(2) when there are only descriptors, and for a mix
//     both: a helper goroutine polls the descriptors and bumps a private
//     futex word that is one of the words slept on (an eventfd cancels it).
//
// Then again from 1: a word that changed may mean a message another
// receiver took first.

// maxSelectQueues is futex_waitv's limit (128) less the helper's word.
const maxSelectQueues = 127

// selectState is what ipc.select reuses from one call to the next.
type selectState struct {
	items  []selectItem
	queues []*ipc.Queue
	words  []*uint32
	vals   []uint32
	pfds   []unix.PollFd
	added  int     // queues registered as waiters (AddWaiter) by this select
	next   int     // where the next scan starts
	word   *uint32 // the fd watcher's futex word
	watch  *fdWatcher

	t0      int64 // traced: when the select began
	takeObj int32 // traced: the queue object being tried
}

type selectItem struct {
	v  lua.LValue // the object as the script passed it
	q  queueSelectable
	f  fdSelectable
	pi int // f's index in pfds
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
	for _, q := range s.queues {
		q.AddWaiter()
	}
	s.added = len(s.queues)
	obj := int32(-1)
	if o, ok := s.items[0].q.(selectObject); ok {
		obj = o.selectObj()
	}
	deadline := w.Deadline()
	for {
		for i, q := range s.queues {
			s.vals[i] = atomic.LoadUint32(q.Word())
		}
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
		err := s.wait(deadline)
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
	s.items, s.queues, s.words, s.vals, s.pfds = s.items[:0], s.queues[:0], s.words[:0], s.vals[:0], s.pfds[:0]
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
			s.items = append(s.items, selectItem{v: v, q: o, pi: -1})
			s.queues = append(s.queues, q)
			s.words = append(s.words, q.Word())
			s.vals = append(s.vals, 0)
		case fdSelectable:
			fd := o.selectFd()
			if fd < 0 {
				L.RaiseError("ipc.select: item %d (%s): this process cannot read from it", i, L.ToStringMeta(v).String())
			}
			s.items = append(s.items, selectItem{v: v, f: o, pi: len(s.pfds)})
			s.pfds = append(s.pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		default:
			what := "nil (the list must not have holes)"
			if v != lua.LNil {
				what = "a " + typeName(v)
			}
			L.RaiseError("ipc.select: item %d is %s: select waits on mailboxes, ipc.inbox, pipe and FIFO read ends, message queues, sockets and listeners", i, what)
		}
	}
	if len(s.queues) > maxSelectQueues {
		L.RaiseError("ipc.select: %d mailboxes and inboxes: at most %d at once", len(s.queues), maxSelectQueues)
	}
}

// release undoes what a select registered, on every way out (a Lua error
// included).
func (s *selectState) release() {
	for _, q := range s.queues[:s.added] {
		q.DoneWaiter()
	}
	s.added = 0
	if s.watch != nil {
		s.watch.stop()
		s.watch = nil
	}
	clear(s.items) // let the Lua values go
	s.items = s.items[:0]
}

// try takes from the first ready object, in turn; ok is false when none
// was ready.
func (s *selectState) try(L *lua.LState) (*selectItem, lua.LValue, error, bool) {
	if len(s.pfds) > 0 {
		if _, err := pollFds(s.pfds, 0); err != nil {
			return nil, nil, err, true
		}
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
		} else if it.f.selectBuffered() || s.pfds[it.pi].Revents != 0 {
			v, ok, err = it.f.selectTake(L)
		}
		if ok || err != nil {
			s.next = k + 1
			return it, v, err, true
		}
	}
	return nil, nil, nil, false
}

// wait sleeps until a queue's word changes, a descriptor is ready or the
// deadline passes (ipc.ErrTimeout). Wakeups may be spurious.
func (s *selectState) wait(deadline time.Time) error {
	switch {
	case len(s.pfds) == 0:
		return ipc.FutexWaitAny(s.words, s.vals, deadline)
	case len(s.queues) == 0:
		ms := -1
		if !deadline.IsZero() {
			ms = max(0, int((time.Until(deadline)+time.Millisecond-1)/time.Millisecond))
		}
		n, err := pollFds(s.pfds, ms)
		if err == nil && n == 0 && ms >= 0 && !time.Now().Before(deadline) {
			err = ipc.ErrTimeout
		}
		return err
	}
	if s.word == nil {
		s.word = new(uint32)
	}
	seen := atomic.LoadUint32(s.word)
	if s.watch == nil {
		w, err := startFdWatcher(s.pfds, s.word)
		if err != nil {
			return err
		}
		s.watch = w
	} else if s.watch.fired.Swap(false) {
		s.watch.rearm <- struct{}{}
	}
	words := append(s.words, s.word)
	vals := append(s.vals, seen)
	return ipc.FutexWaitAny(words, vals, deadline)
}

// pollFds is poll(2) retried on EINTR; ms < 0 waits forever.
func pollFds(fds []unix.PollFd, ms int) (int, error) {
	for {
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			if ms == 0 {
				continue
			}
			return 0, nil // the caller re-checks its deadline
		}
		if err != nil {
			return 0, os.NewSyscallError("poll", err)
		}
		return n, nil
	}
}

// fdWatcher polls a mixed select's descriptors on a helper goroutine and
// turns readiness into a change of a futex word the select sleeps on with
// its queues' words. After firing it waits to be re-armed, so a descriptor
// that stays ready does not make it spin; an eventfd cancels its poll.
type fdWatcher struct {
	efd   int
	fired atomic.Bool
	rearm chan struct{}
	done  chan struct{}
}

func startFdWatcher(pfds []unix.PollFd, word *uint32) (*fdWatcher, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	w := &fdWatcher{efd: efd, rearm: make(chan struct{}, 1), done: make(chan struct{})}
	fds := append(append(make([]unix.PollFd, 0, len(pfds)+1), pfds...), unix.PollFd{Fd: int32(efd), Events: unix.POLLIN})
	go w.loop(fds, word)
	return w, nil
}

func (w *fdWatcher) loop(fds []unix.PollFd, word *uint32) {
	defer close(w.done)
	cancel := &fds[len(fds)-1]
	for {
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if cancel.Revents != 0 {
			return
		}
		w.fired.Store(true)
		atomic.AddUint32(word, 1)
		ipc.FutexWake(word, 1)
		if err != nil {
			return // the select's own poll reports the error
		}
		if _, ok := <-w.rearm; !ok {
			return
		}
	}
}

// stop cancels the watcher and waits for its goroutine to end.
func (w *fdWatcher) stop() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(w.efd, one[:])
	close(w.rearm)
	<-w.done
	unix.Close(w.efd)
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
