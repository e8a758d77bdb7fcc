package bindings

import (
	"encoding/binary"
	"time"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/ipc"
)

// Learning that a process ended: ipc.wait(name) blocks until it has (as
// waitpid), ipc.monitor(name) makes a message arrive when it does (as an
// Erlang monitor's DOWN). Both read the status table, where the supervisor
// records each process's end once it has reaped it (ipc.StatusTable's
// SetEnded: exit code, signal, error message, and a futex word to wake
// waiters); nothing is asked of the supervisor at run time.

func openMonitor(L *lua.LState, mod *lua.LTable, env *Env) {
	env.setFunc(L, mod, "wait", env.luaWait)
	env.setFunc(L, mod, "monitor", env.luaMonitor)
}

// endTarget finds the process name names, in a process body.
func (e *Env) endTarget(L *lua.LState, what string) *Process {
	name := L.CheckString(1)
	if e.Host.Role() != RoleChild || e.Status == nil {
		L.RaiseError("%s(%q): only in a process body (after ipc.run() the report holds every process's status)", what, name)
	}
	p := e.Process(name)
	if p == nil {
		p = e.lookupProcess(name, -1) // spawned after this process started
	}
	if p == nil {
		L.RaiseError("%s: no process %q", what, name)
	}
	if p == e.Self {
		L.RaiseError("%s(%q): a process cannot wait for its own end", what, name)
	}
	return p
}

// endStatus is what ipc.wait returns and a DOWN message's body holds.
type endStatus struct {
	name, signal, err string
	exit              int // -1: none (killed by a signal, or never started)
}

// endStatus says whether p has ended and how. Called on the Lua
// goroutine (it may cache what the supervisor says in p) or, with
// cache false, on another (a monitor's).
func (e *Env) endStatus(p *Process, cache bool) (endStatus, bool) {
	if cache && p.end != nil {
		return *p.end, true
	}
	ended, exit, sig, errText, reused := e.Status.EndedOf(p.Slot, e.serialOf(p))
	if reused {
		// Its slot is another's now: the supervisor knows how it ended.
		st := endStatus{name: p.Name, exit: -1, err: "ended (the supervisor no longer says how)"}
		if e.Broker != nil {
			if sp, f, err := e.Broker.Lookup(p.Name, -1); err == nil && sp.Ended {
				st = *sp.endStatus()
				if f != nil {
					f.Close()
				}
			}
		}
		if cache {
			p.end = &st
		}
		return st, true
	}
	if !ended {
		return endStatus{}, false
	}
	st := endStatus{name: p.Name, exit: exit, err: errText}
	if sig != 0 {
		st.signal = unix.SignalName(unix.Signal(sig))
	}
	return st, true
}

// serialOf is p's serial as the status table has it (0 counts as 1).
func (e *Env) serialOf(p *Process) uint32 { return uint32(max(p.Serial, 1)) }

func (st endStatus) ok() bool { return st.exit == 0 && st.signal == "" && st.err == "" }

// ipc.wait(name, [{timeout =, block =}]) -> {name =, ok =, exit =, signal =, error =}
//
//	| nil, "timeout" | nil, "empty" (block = false, still running)
//
// Blocks until process name has ended and returns how: exit is its exit
// code (nil when a signal killed it), signal the signal's name, error its
// error message. A process that already ended returns at once.
func (e *Env) luaWait(L *lua.LState) int {
	p := e.endTarget(L, "ipc.wait")
	o := WaitOpts(L, 2)
	st, ended := e.endStatus(p, true)
	if !ended {
		if o.NonBlocking {
			return Outcome(L, ipc.ErrEmpty)
		}
		deadline := o.Deadline()
		e.Slot.Enter(ipc.OpProcWait, -1, e.PidOf(p), !deadline.IsZero())
		err := e.Status.WaitEndedOf(p.Slot, e.serialOf(p), deadline)
		e.Slot.Leave()
		if err != nil {
			if err == ipc.ErrTimeout {
				return Outcome(L, err)
			}
			L.RaiseError("ipc.wait(%q): %v", p.Name, err)
		}
		st, _ = e.endStatus(p, true)
	}
	e.Slot.Done()
	t := L.CreateTable(0, 5)
	t.RawSetString("name", lua.LString(st.name))
	t.RawSetString("ok", lua.LBool(st.ok()))
	if st.exit >= 0 {
		t.RawSetString("exit", lua.LNumber(st.exit))
	}
	if st.signal != "" {
		t.RawSetString("signal", lua.LString(st.signal))
	}
	if st.err != "" {
		t.RawSetString("error", lua.LString(st.err))
	}
	L.Push(t)
	return 1
}

// ipc.monitor(name)
// When process name ends (at once if it has), a message
// {type = "DOWN", src = "main", body = {name =, ok =, exit =, signal =, error =}}
// arrives in this process's inbox. A goroutine of this process waits for
// the end and puts the message in the inbox, as a send from the
// supervisor would.
func (e *Env) luaMonitor(L *lua.LState) int {
	p := e.endTarget(L, "ipc.monitor")
	reg := L.Get(lua.RegistryIndex).(*lua.LTable)
	ud, ok := reg.RawGetString(messengerKey).(*lua.LUserData)
	if !ok {
		L.RaiseError("ipc.monitor: message passing is not set up")
	}
	m := ud.Value.(*messenger)
	q := m.ownInbox(L, "ipc.monitor").q
	dst := m.selfSlot()
	status := e.Status
	resume := ipc.PauseHold() // the goroutine needs the P when p ends
	go func() {
		defer resume()
		status.WaitEndedOf(p.Slot, e.serialOf(p), time.Time{})
		st, _ := e.endStatus(p, false)
		msg := &ipc.Message{Type: "DOWN", Src: parentSlot, Dst: dst, Body: st.msgpack()}
		q.Send(msg, ipc.WaitOpts{}) // an inbox that is closed has no one left to tell
	}()
	return 0
}

// msgpack encodes the status as the body of a DOWN message (a map of the
// fields that are set; the wire format is bindings/codec.go's).
func (st endStatus) msgpack() []byte {
	n := 2 // name, ok
	if st.exit >= 0 {
		n++
	}
	if st.signal != "" {
		n++
	}
	if st.err != "" {
		n++
	}
	b := []byte{0x80 | byte(n)}
	b = mpString(b, "name")
	b = mpString(b, st.name)
	b = mpString(b, "ok")
	if st.ok() {
		b = append(b, 0xc3)
	} else {
		b = append(b, 0xc2)
	}
	if st.exit >= 0 {
		b = mpString(b, "exit")
		b = append(b, 0xd2)
		b = binary.BigEndian.AppendUint32(b, uint32(int32(st.exit)))
	}
	if st.signal != "" {
		b = mpString(b, "signal")
		b = mpString(b, st.signal)
	}
	if st.err != "" {
		b = mpString(b, "error")
		b = mpString(b, st.err)
	}
	return b
}

func mpString(b []byte, s string) []byte {
	switch {
	case len(s) < 32:
		b = append(b, 0xa0|byte(len(s)))
	case len(s) < 256:
		b = append(b, 0xd9, byte(len(s)))
	default:
		b = append(b, 0xda)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	}
	return append(b, s...)
}
