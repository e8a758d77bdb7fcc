package trace

import "fmt"

// Version is the schema version of the .jsonl form. Adding fields does not
// change it; renaming or changing the meaning of one does.
const Version = 1

// Op names an operation. The set is open (a new object kind adds its own);
// the ones below are what the runtime records today.
type Op = string

// Operations. Object kinds distinguish same-named ops: a "read" on a pipe
// is a stream read, on shm a memory read.
const (
	// process life
	OpSpawn = "spawn" // the supervisor started the process (first event of a lane)
	OpStart = "start" // the process body begins
	OpExit  = "exit"  // the process ended (Fields: code, signal, error)
	OpKill  = "kill"  // the supervisor signalled it (Fields: signal, reason)
	OpStop  = "stop"  // the run was stopped while this process lived (Outcome: deadlock, timeout, signal, fail-fast)

	// messages (mailboxes, direct links, message queues, framed sockets)
	OpSend    = "send"
	OpReceive = "receive"
	OpSelect  = "select"
	// a rendezvous send (capacity 0) returns: the receiver took the
	// message (Cause: the receive)
	OpRendezvous = "rendezvous"

	// synchronisation
	OpWait   = "wait" // semaphore wait
	OpPost   = "post" // semaphore post
	OpLock   = "lock"
	OpUnlock = "unlock"
	// condition variable (a wait is OpWait, between the mutex's unlock
	// and lock) and barrier (an arrival, then OpWait for the phase's end)
	OpSignal    = "signal"
	OpBroadcast = "broadcast"
	OpArrive    = "arrive"

	// byte streams (pipe, fifo, socket) and shared memory
	OpRead    = "read"
	OpWrite   = "write"
	OpAccept  = "accept"
	OpConnect = "connect"
	OpGet     = "get" // shm typed read
	OpSet     = "set" // shm typed write
	OpAdd     = "add"
	OpCAS     = "cas"

	// the script's own
	OpMark   = "mark"
	OpSpan   = "span"
	OpLog    = "log"
	OpExpect = "expect" // a failed expectation

	// the run
	OpDeadlock = "deadlock" // the deadlock report (Label: the cycle)
	OpOverflow = "overflow" // a process's buffer was full: Fields.dropped events are missing
)

// Event is one recorded operation.
type Event struct {
	P    int    `json:"p"`    // process index in Trace.Procs
	Proc string `json:"proc"` // process name
	Seq  uint64 `json:"seq"`  // per process, from 1; equals VC[P]
	Op   Op     `json:"op"`

	Kind   string `json:"kind,omitempty"`   // object kind: "mailbox", "semaphore", ... ("" for none)
	Object string `json:"object,omitempty"` // the object's script name
	Decl   string `json:"decl,omitempty"`   // where the object was declared (file:line)
	Where  string `json:"where,omitempty"`  // the script's file:line of the operation

	Time int64 `json:"t"`             // CLOCK_MONOTONIC ns; for an interval, when it began
	End  int64 `json:"end,omitempty"` // for an interval (a blocking op, a span): when it ended

	Outcome string `json:"outcome,omitempty"` // "", "timeout", "full", "empty", "closed", "eof", "owner-died", "error"
	Label   string `json:"label,omitempty"`   // mark/span label, log text, deadlock description

	Msg  *MsgID `json:"msg,omitempty"`  // send/receive: the message's id
	Type string `json:"type,omitempty"` // message type, or shm value type ("i32"...)
	Peer string `json:"peer,omitempty"` // destination process or mailbox of a send; sender of a receive
	Off  int64  `json:"off,omitempty"`  // shm byte offset; stream cumulative offset of the first byte
	Len  int64  `json:"len,omitempty"`  // body bytes, shm access length, stream bytes

	Cause  *Ref           `json:"cause,omitempty"`  // the event whose clock this one picked up
	Fields map[string]any `json:"fields,omitempty"` // anything else (mark fields, exit code, priority...)

	VC VC `json:"vc"`
	// BeginVC is, for a span, the clock when it began (VC is the clock at
	// its end, after every event inside it).
	BeginVC VC `json:"bvc,omitempty"`
}

// MsgID identifies a message: its sender's process index and the sequence
// number of the send event (unique in the run; the receive's Cause names
// the same event).
type MsgID struct {
	Src int    `json:"src"`
	Seq uint64 `json:"seq"`
}

// Ref names an event by process index and sequence number.
type Ref struct {
	P   int    `json:"p"`
	Seq uint64 `json:"seq"`
}

// Ref returns the event's own reference.
func (e *Event) Ref() Ref { return Ref{e.P, e.Seq} }

// Done is when the event completed: End for an interval, else Time.
func (e *Event) Done() int64 {
	if e.End > e.Time {
		return e.End
	}
	return e.Time
}

// Interval reports whether the event spans time (a blocking op, a span).
func (e *Event) Interval() bool { return e.End > e.Time }

// Describe is a one-line summary for views and messages:
// `worker.1 #4 receive mailbox "jobs" (x.lua:12)`.
func (e *Event) Describe() string {
	s := fmt.Sprintf("%s #%d %s", e.Proc, e.Seq, e.Op)
	if e.Kind != "" {
		s += " " + e.Kind
		if e.Object != "" {
			s += fmt.Sprintf(" %q", e.Object)
		}
	}
	if e.Label != "" {
		s += " " + e.Label
	}
	if e.Outcome != "" {
		s += " -> " + e.Outcome
	}
	if e.Where != "" {
		s += " (" + e.Where + ")"
	}
	return s
}

// Proc is a process of the run, in declaration order.
type Proc struct {
	Name  string `json:"name"`
	Group string `json:"group,omitempty"`
	Pid   int    `json:"pid,omitempty"`
}

// Object is a declared object of the run.
type Object struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	Decl string `json:"decl,omitempty"` // file:line
}

// Overflow says that a process's buffer filled up: its events after the
// Recorded-th are missing.
type Overflow struct {
	Proc     string `json:"proc"`
	Recorded uint64 `json:"recorded"`
	Dropped  uint64 `json:"dropped"`
}

// Uncarried says that the clock board of a run with spawn templates had
// lanes for Lanes processes (the declared ones and Spawned spawned ones),
// and that Procs, spawned after those, were recorded but their own clock
// components were not carried through the board (semaphores, mutexes,
// streams, conds, barriers, rendezvous receipts): an edge from one of
// their events through such an object is missing from the clocks (the
// race detector may call accesses it orders concurrent). Messages carry
// whole clocks and are not affected.
type Uncarried struct {
	Lanes   int      `json:"lanes"`
	Spawned int      `json:"spawned_lanes"`
	Procs   []string `json:"procs"`
	Note    string   `json:"note"`
}

// Trace is a whole recorded run: the header and the events, ordered by
// completion (Done, then process), so each process's events are in sequence
// order and an event comes after every event that happened before it.
type Trace struct {
	Version  int        `json:"version"`
	Script   string     `json:"script,omitempty"`
	Procs    []Proc     `json:"procs"`
	Objects  []Object   `json:"objects,omitempty"`
	Overflow []Overflow `json:"overflow,omitempty"`
	// Uncarried: processes spawned beyond the board's lanes, whose clock
	// components go with messages only (nil when there were none).
	Uncarried *Uncarried `json:"uncarried,omitempty"`
	Events    []Event    `json:"-"`
}

// ProcIndex returns the index of the named process, or -1.
func (t *Trace) ProcIndex(name string) int {
	for i, p := range t.Procs {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// Index returns a lookup from Ref to position in t.Events.
func (t *Trace) Index() map[Ref]int {
	m := make(map[Ref]int, len(t.Events))
	for i := range t.Events {
		m[t.Events[i].Ref()] = i
	}
	return m
}

// Edge is a causal edge between processes: From's clock was picked up by To.
type Edge struct {
	From, To int // positions in Trace.Events
}

// Edges returns every causal edge between different processes whose both
// ends were recorded (an event whose cause was dropped by an overflow has
// no edge), in the order of their destination events.
func (t *Trace) Edges() []Edge {
	idx := t.Index()
	var out []Edge
	for i := range t.Events {
		c := t.Events[i].Cause
		if c == nil || c.P == t.Events[i].P {
			continue
		}
		if j, ok := idx[*c]; ok {
			out = append(out, Edge{From: j, To: i})
		}
	}
	return out
}
