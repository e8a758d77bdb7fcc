package bindings

import (
	"fmt"
	"os"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/trace"
)

// Processes made at run time. ipc.process(name, {spawn = true}, fn)
// declares a template: a declaration like any other (so every process's
// declarations still match), with no instance at launch. ipc.spawn, in a
// process body, asks the supervisor over the control socket (Env.Broker,
// runtime/ctl.go) to start an instance: the supervisor gives it a status
// slot and an inbox (Env.SpawnInstance, the OnSpawn hooks) and launches it
// as it launches a declared process, with every declared object. The
// spawner gets the new inbox's descriptor in the reply, so it can send at
// once; any other process that names a spawned instance learns it from the
// supervisor the same way, on first use (Env.lookupProcess).

// maxSpawnArgs bounds an instance's encoded args: they travel in its
// manifest, an environment variable (at most 128 KiB, quoted).
const maxSpawnArgs = 16 << 10

// Broker is a child's line to the supervisor at run time (runtime/ctl.go).
type Broker interface {
	// Spawn starts an instance of template (named name, or template.N
	// when name is ""), with args (an encoded body) as self.args; tokens
	// are the descriptors the args carry (PutFiles), now the instance's.
	// clock is the spawner's (trace.Recorder.AppendClock) when the run
	// is traced: the instance's spawn event names the spawner's as cause.
	Spawn(template, name string, args []byte, tokens []uint64, clock []byte) (SpawnedProc, *os.File, error)
	// Lookup finds a process by name (or by slot when name is ""), with
	// its inbox's descriptor (nil for a process without one).
	Lookup(name string, slot int) (SpawnedProc, *os.File, error)
	// PutFiles hands descriptors to the supervisor, which holds them under
	// the returned tokens until a TakeFile (fdpass.go). to is the slot of
	// the one process that can receive them (NoHolder: any), so that they
	// are closed when it ends without having taken them.
	PutFiles(fs []*os.File, to int) ([]uint64, error)
	// TakeFile fetches the descriptor held under token (once).
	TakeFile(token uint64) (*os.File, error)
}

// SpawnedProc is what the supervisor says of a process made at run time.
type SpawnedProc struct {
	Name, Group         string
	Index, Slot, Serial int
	Inbox               int // the index of its inbox's implicit declaration in the parent (-1 - i)
	// Ended is set for a process that has ended and whose slot may be
	// another's by now; Exit, Signal and Error say how it ended.
	Ended         bool
	Exit          int // -1: none
	Signal, Error string
}

// NoHolder is PutFiles's "any process may take these" (a mailbox).
const NoHolder = -3

// declareTemplate records a template (ipc.process with spawn = true).
func (e *Env) declareTemplate(L *lua.LState, name string, fn *lua.LFunction, args lua.LValue) {
	if fn == nil {
		L.RaiseError("process %q: a template (spawn = true) needs a body function", name)
	}
	d := e.Declare(L, "process", name, "spawn=true")
	if e.Templates == nil {
		e.Templates = map[string]*Process{}
	}
	e.Templates[name] = &Process{Name: name, Group: name, Decl: d, Fn: fn, Args: args, Slot: -1}
}

// ipc.spawn(template, [args], [{name =}]) -> instance name
// Starts a new instance of a template: a real process running the
// template's body with self.args = args (the template's args when nil).
func (e *Env) luaSpawn(L *lua.LState) int {
	tmpl := L.CheckString(1)
	args := L.Get(2)
	opts := optTable(L, 3)
	name := optString(L, opts, "name", "")
	what := fmt.Sprintf("ipc.spawn(%q)", tmpl)
	t := e.Templates[tmpl]
	if t == nil {
		for _, p := range e.Procs {
			if p.Group == tmpl || p.Name == tmpl {
				L.RaiseError("%s: process %q is not a template: declare it with ipc.process(%q, {spawn = true}, fn) to start instances at run time", what, tmpl, p.Group)
			}
		}
		L.RaiseError("%s: no template named %q (%s)", what, tmpl, e.templateList())
	}
	if e.Host.Role() != RoleChild || !e.running || e.Broker == nil {
		L.RaiseError("%s: processes are spawned from a process body or from ipc.run{main = function() ... end} (the supervisor's top level runs before and after the processes, not with them)", what)
	}
	if name != "" {
		if name == ParentName || strings.ContainsAny(name, ". \t\n") {
			L.RaiseError("%s: name %q: use a non-empty name without dots or spaces (and not %q)", what, name, ParentName)
		}
		if why := checkName(name); why != "" {
			L.RaiseError("%s: name %q %s", what, name, why)
		}
	}
	var body []byte
	var passed *passList
	var tokens []uint64
	if args != lua.LNil {
		b, pl, err := e.encodeFiles(L, args)
		if err != nil {
			L.RaiseError("%s: args: %v", what, err)
		}
		passed, tokens = pl, pl.tokens
		if len(b) > maxSpawnArgs {
			L.RaiseError("%s: args of %s exceed the %s an instance's args may have: send the rest in a message", what, byteSizeText(len(b)), byteSizeText(maxSpawnArgs))
		}
		body = b
	}
	var clock []byte
	var t0 int64
	rec := e.Trace
	if rec != nil { // the spawn is an event of the spawner's, the cause of the instance's first
		t0 = trace.Now()
		rec.Tick()
		clock = rec.AppendClock(nil)
	}
	sp, f, err := e.Broker.Spawn(tmpl, name, body, tokens, clock)
	if rec != nil {
		ev := &trace.Event{Op: trace.OpSpawn, Kind: "process", Object: tmpl, Peer: sp.Name, Where: traceWhere(L), Time: t0, End: trace.Now()}
		if err != nil {
			ev.Outcome, ev.Label = "error", err.Error()
		}
		rec.Emit(ev)
	}
	if err != nil {
		L.RaiseError("%s: %v", what, err)
	}
	e.knowProcess(sp, f)
	if passed != nil && !optBool(L, opts, "keep", false) {
		passed.closePassed()
	}
	L.Push(lua.LString(sp.Name))
	return 1
}

// templateList names the templates for an error message.
func (e *Env) templateList() string {
	if len(e.Templates) == 0 {
		return "the script declares none: ipc.process(name, {spawn = true}, fn) declares one"
	}
	names := make([]string, 0, len(e.Templates))
	for n := range e.Templates {
		names = append(names, n)
	}
	sort.Strings(names)
	return "templates: " + strings.Join(names, ", ")
}

// knowProcess adds a process made at run time to this child's view of the
// run, with its inbox (f, nil for none) as an implicit object.
func (e *Env) knowProcess(sp SpawnedProc, f *os.File) *Process {
	e.forgetEnded()
	for _, p := range e.Procs {
		if p.Serial == sp.Serial {
			if f != nil {
				f.Close()
			}
			if sp.Ended && p.end == nil {
				p.end = sp.endStatus()
			}
			return p
		}
	}
	p := &Process{Name: sp.Name, Group: sp.Group, Index: sp.Index, Count: sp.Index, Slot: sp.Slot, Serial: sp.Serial}
	if sp.Ended {
		p.end = sp.endStatus()
	}
	if t := e.Templates[sp.Group]; t != nil {
		p.Decl, p.Fn, p.Args = t.Decl, t.Fn, t.Args
	}
	e.Procs = append(e.Procs, p)
	if f != nil {
		e.ImplicitDecl(inboxKind, "") // the manifest's implicit objects first
		d := &Decl{Index: sp.Inbox, Kind: inboxKind, Name: sp.Name, Line: "(implicit)"}
		d.Files = []DeclFile{{Role: "mem", File: f}}
		e.Implicit = append(e.Implicit, d)
		e.tracked = append(e.tracked, p)
	}
	return p
}

// forgetEnded lets go, in a child, of the inboxes of the spawned
// processes it knew that have ended (their descriptor and mapping), so
// that a spawner or a receiver that hears from any number of processes
// over a run holds only the live ones'. A send to one says "closed".
func (e *Env) forgetEnded() {
	if e.Status == nil {
		return
	}
	kept := e.tracked[:0]
	for _, p := range e.tracked {
		ended, _, _, _, _ := e.Status.EndedOf(p.Slot, e.serialOf(p))
		if !ended {
			kept = append(kept, p)
			continue
		}
		p.gone = true
		if e.onForget != nil {
			e.onForget(p)
		}
		for i, d := range e.Implicit {
			if d.Kind == inboxKind && d.Name == p.Name {
				for _, df := range d.Files {
					df.File.Close() // already closed if its queue was mapped
				}
				e.Implicit = append(e.Implicit[:i], e.Implicit[i+1:]...)
				break
			}
		}
	}
	clear(e.tracked[len(kept):])
	e.tracked = kept
}

// endStatus is how the process ended, as the supervisor said.
func (sp SpawnedProc) endStatus() *endStatus {
	return &endStatus{name: sp.Name, exit: sp.Exit, signal: sp.Signal, err: sp.Error}
}

// current reports whether p still has its slot: true unless it ended and
// the slot was given to a process spawned later (or nothing tells).
func (e *Env) current(p *Process) bool {
	return e.Status == nil || p.Serial == 0 || p.Slot >= e.Status.Len() || e.Status.SerialOf(p.Slot) == uint32(p.Serial)
}

// lookupProcess asks the supervisor about a process this child does not
// know (one spawned after it started): by name, or by slot when name is
// "". nil when there is no such process or no supervisor to ask.
func (e *Env) lookupProcess(name string, slot int) *Process {
	if e.Broker == nil || len(e.Templates) == 0 {
		return nil
	}
	sp, f, err := e.Broker.Lookup(name, slot)
	if err != nil {
		return nil
	}
	return e.knowProcess(sp, f)
}

// fetchInbox asks the supervisor for the descriptor of d, another
// declared process's inbox, which a child is not handed at its start
// (runtime/launch.go) but when it first sends there.
func (e *Env) fetchInbox(d *Decl) error {
	if e.Broker == nil {
		return fmt.Errorf("no supervisor to ask for it")
	}
	_, f, err := e.Broker.Lookup(d.Name, -1)
	if err != nil {
		return err
	}
	if f == nil {
		return fmt.Errorf("the supervisor has none")
	}
	d.Files = append(d.Files, DeclFile{Role: "mem", File: f})
	return nil
}

// StartSpawned binds a spawned child to its instance: the processes the
// manifest lists beyond the declared ones were spawned before it started
// (itself among them). Called in a child once the declarations are done.
func (e *Env) StartSpawned(L *lua.LState) error {
	m := e.Manifest
	if m == nil || e.Self != nil {
		return nil
	}
	for i := len(e.Procs); i < len(m.Procs); i++ {
		mp := m.Procs[i]
		if mp.Name == ParentName { // the run's main process (ipc.run{main =})
			continue
		}
		t := e.Templates[mp.Group]
		if t == nil {
			return fmt.Errorf("declarations differ between the parent and this process: process %q is an instance of %q, which is not a template here", mp.Name, mp.Group)
		}
		p := &Process{Name: mp.Name, Group: mp.Group, Index: mp.Index, Count: mp.Count, Slot: mp.Slot, Serial: mp.Serial, Decl: t.Decl, Fn: t.Fn, Args: t.Args}
		e.Procs = append(e.Procs, p)
		if mp.Name == m.Self {
			e.Self = p
			if m.SpawnArgs != nil {
				v, err := e.decodeFiles(L, m.SpawnArgs)
				if err != nil {
					return fmt.Errorf("process %q: args: %v", mp.Name, err)
				}
				p.Args = v
			}
		}
	}
	return nil
}

// SpawnInstance makes, in the parent, the instance of template tmpl that a
// process asked for: checks the name and the --max-procs cap on live
// processes, gives it a slot (a free one, or the next) and runs the
// OnSpawn hooks (its inbox). The runtime launches it.
func (e *Env) SpawnInstance(tmpl, name string, args []byte) (*Process, error) {
	t := e.Templates[tmpl]
	if t == nil {
		return nil, fmt.Errorf("no template named %q (%s)", tmpl, e.templateList())
	}
	if name != "" {
		for _, p := range e.Procs {
			if p.Name == name || p.Group == name {
				return nil, fmt.Errorf("a process named %q exists already", name)
			}
		}
		if e.Templates[name] != nil {
			return nil, fmt.Errorf("%q names a template", name)
		}
	}
	e.initSlots()
	slot, reused := -1, false
	if n := len(e.freeSlots); n > 0 {
		slot, reused = e.freeSlots[n-1], true
	} else if e.slotsUsed < e.StatusSlots() {
		slot = e.slotsUsed
	} else {
		waiting := ""
		if len(e.Draining) > 0 {
			waiting = fmt.Sprintf(" (%d of them ended but a message they sent is still queued: a slot is free again once it is received)", len(e.Draining))
		}
		return nil, fmt.Errorf("%d processes are live, the most a run may have at once (--max-procs %d)%s", e.slotsUsed, e.maxProcs(), waiting)
	}
	t.Count++
	index := t.Count
	if name == "" {
		name = fmt.Sprintf("%s.%d", tmpl, index)
	}
	p := &Process{Name: name, Group: tmpl, Index: index, Count: index, Slot: slot, Serial: len(e.Procs) + 1, Decl: t.Decl, Args: t.Args, SpawnArgs: args}
	e.Procs = append(e.Procs, p)
	holders := e.SlotHolders()
	for len(holders) <= slot {
		holders = append(holders, nil)
	}
	prev := holders[slot]
	holders[slot] = p
	e.holders = holders
	for _, h := range e.OnSpawn {
		if err := h(e, p); err != nil {
			e.Procs = e.Procs[:len(e.Procs)-1]
			holders[slot] = prev
			return nil, err
		}
	}
	if reused {
		e.freeSlots = e.freeSlots[:len(e.freeSlots)-1]
	} else {
		e.slotsUsed++
	}
	return p, nil
}

// SlotHolders is, by slot, the process that has it now (or had it last):
// the declared ones, then the spawned ones (nil: none, or the main
// process's, which sends as the supervisor).
func (e *Env) SlotHolders() []*Process {
	if e.holders == nil {
		for _, p := range e.Procs {
			for p.Slot >= len(e.holders) {
				e.holders = append(e.holders, nil)
			}
			e.holders[p.Slot] = p
		}
	}
	return e.holders
}

// initSlots counts the declared processes' slots as used, and the main
// process's (once, before the first spawn).
func (e *Env) initSlots() {
	if !e.slotsInit {
		e.slotsInit = true
		e.declared = len(e.Procs)
		e.slotsUsed = e.declared
		if e.Main != nil {
			e.declared++
			e.slotsUsed++
		}
	}
}

// MainSerial is the serial of the run's main process (ipc.run{main =}):
// it has none among the processes the run started in order.
const MainSerial = 1 << 30

// addMain makes the run's main process, for ipc.run{main = fn}: a process
// named "main" that runs fn, with the supervisor's inbox, messages from
// it say src "main", and a slot after the declared processes'.
func (e *Env) addMain() {
	if e.Main == nil && !e.slotsInit {
		e.Main = &Process{Name: ParentName, Group: ParentName, Index: 1, Count: 1, Slot: len(e.Procs), Serial: MainSerial}
	}
}

// SlotEnded is called by the runtime once spawned process p has ended and
// been reaped and reported: its slot is free again once no object holds a
// message p sent (ReleaseSlots).
func (e *Env) SlotEnded(p *Process) {
	e.Draining = append(e.Draining, p)
}

// ReleaseSlots frees the slots of the ended processes (SlotEnded) of which
// no object holds a message any more; the others wait for a later call.
func (e *Env) ReleaseSlots() {
	kept := e.Draining[:0]
	for _, p := range e.Draining {
		if e.holdsFrom(p.Slot) {
			kept = append(kept, p)
			continue
		}
		e.freeSlots = append(e.freeSlots, p.Slot)
	}
	clear(e.Draining[len(kept):])
	e.Draining = kept
}

func (e *Env) holdsFrom(slot int) bool {
	for _, d := range e.Objects() {
		if h, ok := d.Object.(SenderHolder); ok && h.HoldsFrom(slot) {
			return true
		}
	}
	return false
}

// LiveSlots is how many slots are taken: by live processes, and by ended
// ones whose messages are still queued.
func (e *Env) LiveSlots() int {
	e.initSlots()
	return e.slotsUsed - len(e.freeSlots)
}

// StatusSlots is how many status-table slots the run needs: one per
// declared instance, and room up to --max-procs when templates can spawn.
func (e *Env) StatusSlots() int {
	e.initSlots()
	if len(e.Templates) > 0 {
		return max(e.declared, e.maxProcs())
	}
	return e.declared
}
