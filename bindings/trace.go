package bindings

import (
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

// Recording a traced run (docs/TRACING.md). Env.Trace is nil unless the
// run is traced, and every operation tests it once; everything else here
// runs only when it is set. Each object kind calls these around its
// operation:
//
//   - an operation that carries nothing: rec.Record(ev)
//   - a release (post, unlock): traceRelease before the operation, so
//     the clock is on the board before any waiter can wake, then emit
//   - an acquire (wait, lock): traceAcquire after it succeeded
//   - a stream write reserves its byte range before writing; a read takes
//     its range after reading (trace.Board)
//   - a message carries the sender's clock in front of its body

// outcomeOf is the trace outcome of an ipc error ("" for success).
func outcomeOf(err error) string {
	switch err {
	case nil:
		return ""
	case ipc.ErrTimeout, ipc.ErrEmpty, ipc.ErrFull, ipc.ErrClosed, ipc.ErrEOF:
		return err.Error()
	}
	return "error"
}

// traceObject names an object by its status-table id: a declaration's
// index, or an implicit object's (negative) one.
func (e *Env) traceObject(obj int32) (kind, name string) {
	if obj >= 0 && int(obj) < len(e.Decls) {
		d := e.Decls[obj]
		return d.Kind, d.Name
	}
	if i := -1 - int(obj); i >= 0 && i < len(e.Implicit) && e.Implicit[i].Index == int(obj) {
		d := e.Implicit[i]
		return d.Kind, d.Name
	}
	for _, d := range e.Implicit { // a child lists only some (spawn.go)
		if d.Index == int(obj) {
			return d.Kind, d.Name
		}
	}
	return "", ""
}

// traceWhere is the script line of the operation being recorded: what
// where(L) says, without formatting a string for every event (it cost a
// sixth of a traced send).
func traceWhere(L *lua.LState) string {
	if fn, pc, ok := callerFrame(L); ok && fn != nil && !fn.IsG && fn.Proto != nil && pc > 0 && pc <= len(fn.Proto.DbgSourcePositions) {
		// The line of an instruction of a function's code does not
		// change: a loop's call site (its proto and pc) answers at once.
		p := fn.Proto
		slot := &recentPC[(uintptr(unsafe.Pointer(p))>>5+uintptr(pc))%uintptr(len(recentPC))]
		if e := slot.Load(); e != nil && e.proto == p && e.pc == pc {
			return e.where
		}
		w := cachedWhere(p.SourceName, p.DbgSourcePositions[pc-1])
		slot.Store(&pcWhere{proto: p, pc: pc, where: w})
		return w
	}
	dbg, ok := L.GetStack(1)
	if !ok {
		return where(L)
	}
	if _, err := L.GetInfo("Sl", dbg, lua.LNil); err != nil || dbg.CurrentLine < 0 {
		return where(L)
	}
	return cachedWhere(dbg.Source, dbg.CurrentLine)
}

// cachedWhere is "source:line", made once.
func cachedWhere(source string, line int) string {
	// A loop records from the same few lines again and again: a small
	// table indexed by the line answers without hashing the source's name
	// (the map's lookup was half of this function's cost on a traced
	// receive loop); the source is the same string each time, so its
	// comparison is a pointer's.
	slot := &recentWhere[uint(line)%uint(len(recentWhere))]
	if last := slot.Load(); last != nil && last.line == line && last.source == source {
		return last.where
	}
	k := whereKey{source, line}
	v, ok := whereCache.Load(k)
	if !ok {
		v = source + ":" + strconv.Itoa(line)
		whereCache.Store(k, v)
	}
	slot.Store(&whereEntry{whereKey: k, where: v.(string)})
	return v.(string)
}

type whereKey struct {
	source string
	line   int
}

type whereEntry struct {
	whereKey
	where string
}

// pcWhere is the line of a call site: an instruction of a function.
type pcWhere struct {
	proto *lua.FunctionProto
	pc    int
	where string
}

var (
	// recentPC: the last call site looked up, per slot of its proto and pc
	recentPC   [64]atomic.Pointer[pcWhere]
	whereCache sync.Map // whereKey -> "file:line"
	// recentWhere: the last line looked up, per line modulo 64
	recentWhere [64]atomic.Pointer[whereEntry]
)

// traceAcquire records a completed acquire of decl's object (a semaphore
// wait, a mutex lock) that began at t0: on success it merges the clock
// the last release left on the board.
func traceAcquire(L *lua.LState, rec *trace.Recorder, d *Decl, op string, t0 int64, err error, label string) {
	e := trace.Event{Op: op, Kind: d.Kind, Object: d.Name, Where: traceWhere(L), Time: t0, End: trace.Now(), Outcome: outcomeOf(err), Label: label}
	if err == nil {
		if c, ok := rec.Board().Acquire(d.Index, rec); ok {
			e.Cause = &c
		}
	}
	rec.Record(&e)
}

// traceRelease begins a release of decl's object (a post, an unlock): it
// ticks and leaves the clock on the board. Call it before the operation;
// emit the event after with rec.Emit.
func traceRelease(rec *trace.Recorder, d *Decl) {
	rec.Tick()
	rec.Board().Release(d.Index, rec)
}

// traceReleased emits the release begun by traceRelease.
func traceReleased(L *lua.LState, rec *trace.Recorder, d *Decl, op string, t0 int64, err error) {
	rec.Emit(&trace.Event{Op: op, Kind: d.Kind, Object: d.Name, Where: traceWhere(L), Time: t0, Outcome: outcomeOf(err)})
}

// A stream's reads and writes go through board slots: a pipe's or a
// FIFO's, its declaration's (both directions share it: one is unused);
// a connection's, one per direction (connTrace).

// connTrace is a traced connection's: the slots of the bytes this end
// writes and of those it reads, and what its events name.
type connTrace struct {
	rec          *trace.Recorder
	wslot, rslot int
	kind, name   string
}

// traceConn gives a connected stream socket its slots when the run is
// traced (nothing for a datagram socket, or past the board's
// trace.ConnSlots): the two ends find the same slots by the connection's
// keys (trace.ConnKeys).
func (s *stream) traceConn(rec *trace.Recorder, name string, fd int) {
	if rec == nil || rec.Board() == nil {
		return
	}
	w, r, ok := trace.ConnKeys(fd)
	if !ok {
		return
	}
	ws, ok1 := rec.Board().ConnSlot(w)
	rs, ok2 := rec.Board().ConnSlot(r)
	if ok1 && ok2 {
		s.tconn = &connTrace{rec: rec, wslot: ws, rslot: rs, kind: "conn", name: name}
	}
}

// traced names s's slots and object.
func (s *stream) traced() (wslot, rslot int, kind, name string) {
	if c := s.tconn; c != nil {
		return c.wslot, c.rslot, c.kind, c.name
	}
	d := s.tdecl
	return d.Index, d.Index, d.Kind, d.Name
}

// traceStreamWrite begins a write of n bytes to s: it ticks and reserves
// the bytes' offsets, leaving the clock for the reader.
func traceStreamWrite(rec *trace.Recorder, s *stream, n int) int64 {
	rec.Tick()
	w, _, _, _ := s.traced()
	return rec.Board().StreamWrite(w, rec, int64(n))
}

// traceStreamWrote emits the write begun by traceStreamWrite; wrote is
// what was written (a short write gives back the rest of its range).
func traceStreamWrote(L *lua.LState, rec *trace.Recorder, s *stream, off int64, want, wrote int, t0 int64, err error) {
	w, _, kind, name := s.traced()
	rec.Board().StreamShort(w, off, int64(want), int64(wrote))
	rec.Emit(&trace.Event{Op: trace.OpWrite, Kind: kind, Object: name, Where: traceWhere(L), Time: t0, End: trace.Now(),
		Off: off, Len: int64(wrote), Outcome: outcomeOf(err)})
}

// traceStreamRead records a read of n bytes from s begun at t0 (n = 0:
// nothing was read; err says why).
func traceStreamRead(L *lua.LState, rec *trace.Recorder, s *stream, n int, t0 int64, err error) {
	_, r, kind, name := s.traced()
	e := trace.Event{Op: trace.OpRead, Kind: kind, Object: name, Where: traceWhere(L), Time: t0, End: trace.Now(), Len: int64(n), Outcome: outcomeOf(err)}
	if n > 0 {
		off, c, ok := rec.Board().StreamRead(r, rec, int64(n))
		e.Off = off
		if ok {
			e.Cause = &c
		}
	}
	rec.Record(&e)
}
