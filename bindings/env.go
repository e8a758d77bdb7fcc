// Package bindings is the Lua glue of ipcscript: it exposes the ipc objects
// as the `ipc` Lua module. One file per object kind. It knows nothing about
// launching processes: the runtime gives it an Env that says whether this Lua
// state is the parent (declarations create objects), a child (declarations
// bind to inherited descriptors) or a check (declarations are only listed).
package bindings

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

// Env is the state a Lua state's `ipc` module works on. The runtime creates
// one per Lua state, fills the hooks, and reads Decls back.
type Env struct {
	Host   Host     // what declarations do: create, bind to inherited, or only record
	Script string   // the script's file name, for messages
	Args   []string // script arguments (the Lua `arg` table)

	Decls []*Decl // every declaration in order (processes included)
	// Implicit objects are made by the runtime rather than declared by the
	// script (each process's direct-link inbox). Kinds add them in a
	// BeforeLaunch hook in the parent; a child finds them, with their
	// inherited descriptors, before the script runs.
	Implicit     []*Decl
	BeforeLaunch []func(e *Env) error
	Procs        []*Process // process instances in declaration order (count expanded), then spawned ones
	// Templates are the processes declared with {spawn = true}: no
	// instance at launch; ipc.spawn starts them (spawn.go).
	Templates map[string]*Process
	// OnSpawn hooks run in the parent for each instance ipc.spawn makes,
	// before it is launched (its inbox is created there).
	OnSpawn []func(e *Env, p *Process) error
	// OpenLazy fills t when it is a table the runtime fills on first use
	// (in a child, a standard library the script has not touched yet) and
	// does nothing otherwise; nil: there are none. The body codec calls it
	// before it reads a table that has a metatable, so a child sends what
	// the parent would (an unopened library is empty until then).
	OpenLazy func(t *lua.LTable)
	// Broker is a child's line to the supervisor at run time (spawning,
	// learning about spawned processes, handing descriptors over); nil in
	// the parent and while checking.
	Broker Broker

	// Child mode: what the parent declared, and who this process is.
	Manifest *Manifest
	Self     *Process

	// funcs holds the module's functions, made at once by newModule (setFunc).
	funcs []lua.LFunction
	// classes is the state's pending classes while newModule registers
	// them (Env.addClass): looked up in the registry once, not per class.
	classes *pendingList

	// Status is the run's status table (nil outside a run); Slot is this
	// process's slot in it.
	Status *ipc.StatusTable
	Slot   *ipc.WaitStatus

	// Run is set by the runtime. In the parent it launches the processes and
	// returns the report table; in a child it runs the body and never returns.
	Run func(L *lua.LState, opts RunOptions) lua.LValue

	// Trace records this process's IPC operations; nil when the run is not
	// traced (every operation tests it once).
	Trace *trace.Recorder
	// udpPeers: addresses a datagram with the run's clock came from
	// (socket.go: a reply to them carries one too).
	udpPeers map[string]bool

	// Log receives ipc.log lines (already prefixed as the runtime wants).
	Log io.Writer

	// Failed holds expectations that failed in this process.
	Failed []string

	// MaxProcs caps the processes a run may declare (count included);
	// 0 means DefaultMaxProcs.
	MaxProcs int

	// Secret is the run's random token, the same in every process of the
	// run (the runtime's IPCSCRIPT_RUN); a tcp listener not declared
	// public takes only connections that open with it (socket.go). Empty
	// outside a run.
	Secret string

	runDir *ipc.RunDir // created on first use by a named object

	// Main is, in the parent, the process that runs ipc.run{main = fn}
	// (nil without one): not in Procs, its slot right after theirs.
	Main *Process

	// Slots of processes made at run time (spawn.go), in the parent.
	// Draining are ended spawned processes whose slots are not free yet
	// (a message they sent is still queued somewhere).
	Draining  []*Process
	freeSlots []int      // slots whose process ended and nothing of it is queued
	holders   []*Process // by slot, the process that has it (or had it last)

	// In a child: the spawned processes known with their inboxes
	// (knowProcess), and what lets go of an ended one's (forgetEnded).
	tracked   []*Process
	onForget  func(p *Process)
	slotsUsed int // slots ever taken (declared processes first)
	declared  int // declared process instances
	slotsInit bool

	ranRun  bool // ipc.run was called
	running bool // a process body (or the code after ipc.run) is running
}

// RunOptions are ipc.run's options.
type RunOptions struct {
	Timeout  float64 // seconds; 0 = none
	FailFast bool
	Expect   string // "" | "deadlock" | "failure" | "timeout": the outcome the script expects
	Trace    bool   // record the run, for report.trace (docs/CHECKING.md)
	// Main is ipc.run{main = fn}: a body the run starts with the
	// processes, in a process of its own named "main" (spawn.go).
	Main *lua.LFunction
}

// Decl is one declaration: a process or an object.
type Decl struct {
	Index int
	Kind  string // "process", "pipe", "mailbox", ...
	Name  string
	Line  string // "file.lua:12", where it was declared
	Spec  string // canonical parameters; must be equal in parent and child
	Files []DeclFile
	// Object is the bound Go object (parent and child). The runtime calls
	// Recover(pid) / SenderGone / Close on it through the interfaces below.
	Object any
	// Trace is the process's recorder (Env.Trace) when the run is traced,
	// at hand for the object's operations; nil otherwise.
	Trace *trace.Recorder
}

// DeclFile is one descriptor of a declaration.
type DeclFile struct {
	Role string   // what it is to the object: "r", "w", "mem", "listener"...
	File *os.File // parent: the descriptor to hand over; child: the inherited one
	// Only, when set, names the one process (instance or group name) that
	// gets this descriptor; everyone else never holds it.
	Only string
}

// Process is one process instance.
type Process struct {
	Name   string // instance name: "worker" or "worker.2"
	Group  string // declared name: "worker"
	Index  int    // 1-based index within the group
	Count  int    // instances in the group
	Slot   int    // status table slot and sender index; a spawned instance's is another's once it ended
	Serial int    // unique in the run, from 1: its place among every process the run started
	Decl   *Decl
	Fn     *lua.LFunction // the body (nil for exec processes)
	Args   lua.LValue     // opts.args
	Exec   []string       // opts.exec
	Stdin  *Decl          // pipe or fifo wired to fd 0/1/2, or nil
	Stdout *Decl
	Stderr *Decl
	Pid    int
	// SpawnArgs is the encoded args of an instance ipc.spawn made (a
	// message body; nil for a declared instance).
	SpawnArgs []byte
	// end is, in a child, how the process ended once known from the
	// supervisor (its slot was given to another since).
	end *endStatus
	// gone: in a child, it ended and its inbox was let go (forgetEnded).
	gone bool
}

// Owns reports whether descriptor f goes to process p.
func (f DeclFile) Owns(p *Process) bool {
	return f.Only == "" || f.Only == p.Name || f.Only == p.Group
}

// Recoverer is implemented by objects that must be repaired when a process
// dies holding them (a lock in shared memory).
type Recoverer interface{ Recover(pid int) }

// Granter is implemented by objects that hand what a sleeper waits for
// straight to it (a FIFO semaphore, mutex, condition variable, barrier):
// Granted(pid) says that process pid was woken and has not run yet, though
// its status slot still says it waits. The deadlock watch asks before it
// calls a standstill a deadlock.
type Granter interface{ Granted(pid int) bool }

// ExitObserver is implemented by objects that must know when a process of
// the run has exited (a direct-link inbox releases receivers waiting on it).
type ExitObserver interface{ ProcessExited(p *Process) }

// Releaser is implemented by objects that hold something in the parent
// until the run is over (a mapping, a name in the file system or the
// message-queue name space). The runtime calls Release once, after every
// process has exited.
type Releaser interface{ Release() }

// SenderHolder is implemented by objects that hold messages (mailboxes,
// inboxes): a spawned process's slot (its sender index) is given to
// another only once no object holds a message it sent.
type SenderHolder interface{ HoldsFrom(slot int) bool }

// Closer is implemented by objects the parent must close after launch
// because only the children may hold them (pipe ends).
type Closer interface{ CloseParent() }

// Manifest is what the parent tells a child about the run: its identity and
// the declarations with the descriptor numbers they arrive on. How it
// travels (its encoding, with the protocol's diagram) is runtime/protocol.go;
// the type is here because a child's host binds declarations to it, and
// runtime imports bindings.
type Manifest struct {
	RunID  string
	RunDir string
	Script string
	Args   []string
	Self   string
	Procs  []ManifestProc
	Decls  []ManifestDecl
	// Implicit objects (see Env.Implicit), each with the descriptors of it
	// this child holds.
	Implicit []ManifestDecl
	Source   int // memfd holding the script's source
	Status   int // status table memfd
	Ctl      int // control socket to the supervisor
	// TraceBuf and TraceBoard are the process's trace buffer and the run's
	// clock board (0 when the run is not traced).
	TraceBuf, TraceBoard int
	// TraceProc is the process's lane in the trace, plus 1 (a spawned
	// process's is not its place in Procs).
	TraceProc int
	// SpawnArgs is the encoded args of an instance ipc.spawn made.
	SpawnArgs []byte
}

// ManifestProc is a process instance as the parent saw it.
type ManifestProc struct {
	Name   string
	Group  string
	Index  int
	Count  int
	Slot   int // status table slot and sender index
	Serial int // unique in the run, from 1
}

// ManifestDecl is a declaration as the parent saw it.
type ManifestDecl struct {
	Kind string
	Name string
	Line string
	Spec string
	FDs  []ManifestFD // the descriptors this child holds, one per role, in role order
	// Index is an implicit object's index in the parent (-1 - i), when the
	// manifest lists only some of them; 0: its place in the list.
	Index int
}

// ManifestFD is one descriptor of a declaration in a child: its role
// ("r", "w", "mem", ...) and its number. A slice of them, not a map: a
// child decoded one map per inbox of the run (64 in a 64-process launch,
// ~50k of its instructions), and an implicit group's entries share one
// backing array.
type ManifestFD struct {
	Role string
	FD   int
}

// FD returns the descriptor of role, if the declaration has one.
func (d *ManifestDecl) FD(role string) (int, bool) {
	for _, f := range d.FDs {
		if f.Role == role {
			return f.FD, true
		}
	}
	return 0, false
}

// SetFD sets the descriptor of role, keeping FDs in role order.
func (d *ManifestDecl) SetFD(role string, fd int) {
	i := 0
	for i < len(d.FDs) && d.FDs[i].Role < role {
		i++
	}
	if i < len(d.FDs) && d.FDs[i].Role == role {
		d.FDs[i].FD = fd
		return
	}
	d.FDs = append(d.FDs, ManifestFD{})
	copy(d.FDs[i+1:], d.FDs[i:])
	d.FDs[i] = ManifestFD{Role: role, FD: fd}
}

// Declare records a declaration made at the current script line and tells
// the host (a child's checks it against the parent's and attaches the
// inherited descriptors). It raises a Lua error for a declaration inside a process body
// or one that differs from the parent's.
func (e *Env) Declare(L *lua.LState, kind, name, spec string) *Decl {
	line := where(L)
	if why := checkName(name); why != "" {
		L.RaiseError("%s name %q %s", kind, name, why)
	}
	if e.running {
		L.RaiseError("%s %q: objects and processes are declared at the top level, before ipc.run(), not inside a process body", kind, name)
	}
	d := &Decl{Index: len(e.Decls), Kind: kind, Name: name, Line: line, Spec: spec, Trace: e.Trace}
	e.Host.Declared(L, d)
	e.Decls = append(e.Decls, d)
	return d
}

func describe(kind, name, spec string) string {
	s := fmt.Sprintf("%s %q", kind, name)
	if spec != "" {
		s += " {" + spec + "}"
	}
	return s
}

// File returns the descriptor with the given role, or nil when this process
// does not hold it.
func (d *Decl) File(role string) *os.File {
	for _, f := range d.Files {
		if f.Role == role {
			return f.File
		}
	}
	return nil
}

// AddFile attaches a descriptor created in the parent.
func (d *Decl) AddFile(role string, f *os.File, only string) {
	d.Files = append(d.Files, DeclFile{Role: role, File: f, Only: only})
}

// Describe names the declaration the way errors do: mailbox "orders", or
// pipe at x.lua:3 for an object without a name.
func (d *Decl) Describe() string {
	if strings.HasPrefix(d.Name, "#") {
		return d.Kind + " at " + d.Line
	}
	return fmt.Sprintf("%s %q", d.Kind, d.Name)
}

// pidOf returns the pid of the process instance (or single-instance group)
// named name, as the status table knows it; 0 when unknown.
func (e *Env) pidOf(name string) int32 {
	for _, p := range e.Procs {
		if p.Name == name || (p.Group == name && p.Count == 1) {
			return e.PidOf(p)
		}
	}
	return 0
}

// PidOf returns process p's pid for the status table's peer field (a
// deadlock report names the cycle from it). A process may block before the
// supervisor has started p; then this waits until every process is started,
// which costs nothing after the first moments of a run.
func (e *Env) PidOf(p *Process) int32 {
	if p == nil || e.Status == nil {
		return 0
	}
	if !e.current(p) {
		return 0 // it ended, and its slot is another's now
	}
	pid := atomic.LoadInt32(&e.Status.Slot(p.Slot).Pid)
	if pid == 0 {
		e.Status.WaitStarted()
		pid = atomic.LoadInt32(&e.Status.Slot(p.Slot).Pid)
	}
	return pid
}

// Process returns the process instance with the given name, or nil.
func (e *Env) Process(name string) *Process {
	for _, p := range e.Procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// CheckComplete is called by a child when it reaches ipc.run: every
// declaration of the parent must have been made here too.
func (e *Env) CheckComplete() error {
	if h, ok := e.Host.(*childHost); ok {
		return h.complete()
	}
	return nil
}

// Running marks that declarations are over (a body or post-run code runs).
func (e *Env) Running() { e.running = true }

// RanRun reports whether the script called ipc.run().
func (e *Env) RanRun() bool { return e.ranRun }

// where returns "file:line" of the Lua code calling the current Go function.
// A Lua caller's is made here from GetStack and GetInfo (L.Where formats
// it with fmt.Sprintf twice: ~2k instructions of a child's start, for its
// declarations; callerFrame reads frame layouts by reflection at its first
// use, which costs more); any other caller's is L.Where's.
func where(L *lua.LState) string {
	if dbg, ok := L.GetStack(1); ok {
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err == nil && dbg.CurrentLine > 0 {
			return strings.TrimSpace(dbg.Source + ":" + strconv.Itoa(dbg.CurrentLine))
		}
	}
	return luaWhere(L)
}

// luaWhere is where(L) as L.Where(1) says it.
func luaWhere(L *lua.LState) string {
	return strings.TrimSuffix(strings.TrimSpace(L.Where(1)), ":")
}

// RunDir returns the run's private directory (mode 0700), where named
// objects (FIFOs, unix sockets) live: created on first use in the parent,
// opened from the manifest in a child (Host.RunDir). A check has none.
func (e *Env) RunDir() (*ipc.RunDir, error) {
	if e.runDir != nil {
		return e.runDir, nil
	}
	var err error
	e.runDir, err = e.Host.RunDir()
	return e.runDir, err
}

// RunDirPath is the run directory's path, or "" when none was created.
func (e *Env) RunDirPath() string {
	if e.runDir == nil {
		return ""
	}
	return e.runDir.Dir()
}

// RemoveRunDir removes the run directory (parent, at the end of the run).
func (e *Env) RemoveRunDir() error {
	if e.runDir == nil || e.Host.Role() != RoleParent {
		return nil
	}
	err := e.runDir.Remove()
	e.runDir = nil
	return err
}

// Objects returns every declaration and implicit object, for the runtime
// to call Recover/ProcessExited/Release on.
func (e *Env) Objects() []*Decl {
	all := make([]*Decl, 0, len(e.Decls)+len(e.Implicit))
	return append(append(all, e.Decls...), e.Implicit...)
}

// PrepareLaunch runs the BeforeLaunch hooks (parent, once every declaration
// is in, just before the processes start).
func (e *Env) PrepareLaunch() error {
	for _, h := range e.BeforeLaunch {
		if err := h(e); err != nil {
			return err
		}
	}
	return nil
}

// AddImplicit records an implicit object created in the parent.
func (e *Env) AddImplicit(kind, name string) *Decl {
	d := &Decl{Index: -1 - len(e.Implicit), Kind: kind, Name: name, Line: "(implicit)"}
	e.Implicit = append(e.Implicit, d)
	return d
}

// ImplicitDecl finds an implicit object by kind and name. In a child it is
// built from the manifest on first use; nil when there is none.
func (e *Env) ImplicitDecl(kind, name string) *Decl {
	if h, ok := e.Host.(*childHost); ok && e.Implicit == nil {
		e.Implicit = h.implicit()
	}
	for _, d := range e.Implicit {
		if d.Kind == kind && d.Name == name {
			return d
		}
	}
	return nil
}
