package trace

import (
	"fmt"
	"sort"
	"sync"
)

// Collector is the supervisor's side of a traced run: it creates each
// process's buffer and the clock board, records what only the supervisor
// sees (spawn, kill, stop, exit) and merges everything into a Trace when
// the run is over.
type Collector struct {
	Script  string
	Procs   []Proc
	Objects []Object
	Board   *Board
	bufs    []*Buffer
	// NoAccessFields: Merge leaves out the fields (values) of shared-memory
	// accesses. For a run recorded only for the race detector, which does
	// not read them (decoding them was a third of its merge).
	NoAccessFields bool
	mu             sync.Mutex
	post           [][]Event // per process: events the supervisor adds after its last own
	bufSize        int
	declared       int        // lanes of the processes NewCollector was given
	uncarried      *Uncarried // processes added beyond the board's lanes
}

// NewCollector creates buffers for procs (bufSize bytes each, 0 = default)
// and a board with slots clock slots (one per declaration: a recorder
// names an object's slot by its declaration index).
func NewCollector(script string, procs []Proc, objects []Object, slots, bufSize int) (*Collector, error) {
	return NewSpawnCollector(script, procs, objects, slots, 0, bufSize)
}

// NewSpawnCollector is NewCollector for a run that may spawn processes
// (AddProc): its board keeps clock components for spawnLanes more lanes
// (trace.SpawnLanes), those of the first spawnLanes processes added.
func NewSpawnCollector(script string, procs []Proc, objects []Object, slots, spawnLanes, bufSize int) (*Collector, error) {
	c := &Collector{Script: script, Procs: procs, Objects: objects, bufSize: bufSize, declared: len(procs)}
	var err error
	if c.Board, err = newBoard(slots, len(procs)+max(spawnLanes, 0), len(procs)); err != nil {
		return nil, err
	}
	for _, p := range procs {
		b, err := NewBuffer(p.Name, bufSize)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.bufs = append(c.bufs, b)
	}
	c.post = make([][]Event, len(procs))
	return c, nil
}

// Buffer is process p's buffer (to hand to it).
func (c *Collector) Buffer(p int) *Buffer { return c.bufs[p] }

// Spawned records, as process p's first event, that the supervisor
// starts it. Call it before the process runs.
func (c *Collector) Spawned(p int) {
	r := NewRecorder(p, len(c.Procs), c.bufs[p], nil)
	r.Record(&Event{Op: OpSpawn, Time: Now()})
}

// AddProc adds a lane for a process made at run time (ipc.spawn) and
// returns its index: its own buffer, handed to it as the declared ones'
// are. The board keeps clock components for the lanes NewSpawnCollector
// made room for: a process added beyond them is recorded, but a clock
// that travels through the board (semaphores, mutexes, streams, conds,
// barriers) carries none of its own events. The trace says so
// (Trace.Uncarried, and the label of the process's spawn event), and
// carried is false.
func (c *Collector) AddProc(p Proc) (lane int, carried bool, err error) {
	b, err := NewBuffer(p.Name, c.bufSize)
	if err != nil {
		return 0, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Procs = append(c.Procs, p)
	c.bufs = append(c.bufs, b)
	c.post = append(c.post, nil)
	lane = len(c.Procs) - 1
	if carried = c.Board.Carries(lane); carried {
		c.Board.UseLanes(lane + 1)
	} else {
		if c.uncarried == nil {
			n := c.Board.Lanes()
			c.uncarried = &Uncarried{Lanes: n, Spawned: n - c.declared,
				Note: fmt.Sprintf("clock components of spawned lanes beyond %d (the %d declared and %d spawned processes) are not carried through semaphores, mutexes, streams, conds, barriers or rendezvous receipts; messages carry them", n, c.declared, n-c.declared)}
		}
		c.uncarried.Procs = append(c.uncarried.Procs, p.Name)
	}
	return lane, carried, nil
}

// uncarriedLabel is the label of the spawn event of a process beyond the
// board's lanes.
const uncarriedLabel = "clock components not carried by the board (beyond its lanes): only messages carry this process's events"

// SpawnedBy records, as process p's first event, that the supervisor
// starts it at the request of the process whose clock (AppendClock) is
// clock: the spawn's Cause is that process's event, the edge a view draws
// from spawner to instance. An empty or malformed clock records a plain
// spawn. Call it before the process runs.
func (c *Collector) SpawnedBy(p int, clock []byte) {
	r := NewRecorder(p, len(c.Procs), c.bufs[p], nil)
	e := &Event{Op: OpSpawn, Time: Now()}
	if !c.Board.Carries(p) {
		e.Label = uncarriedLabel
	}
	if len(clock) > 0 {
		if cause, _, err := r.AcquireMessage(clock); err == nil {
			e.Cause = &cause
		}
	}
	r.Record(e)
}

// SpawnedWriter records, for process p, an exec'd program that records
// nothing itself, that the streams with board slots objs (its stdout and
// stderr pipes) carry only its bytes: their reads pick up the clock of
// its spawn. Call it after Spawned.
func (c *Collector) SpawnedWriter(p int, objs ...int) {
	vc := make(VC, len(c.Procs))
	vc[p] = 1
	for _, o := range objs {
		c.Board.StreamFrom(o, p, 1, vc)
	}
}

// SetPid records process p's pid for the header.
func (c *Collector) SetPid(p, pid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p >= 0 && p < len(c.Procs) && pid != 0 {
		c.Procs[p].Pid = pid
	}
}

// Add records an event the supervisor saw about process p (a kill, a stop,
// its exit). It goes after the process's own events; its clock is the
// process's last one, merged with e.VC when set (what the event picked up).
func (c *Collector) Add(p int, e Event) {
	if p < 0 || p >= len(c.post) {
		return
	}
	if e.Time == 0 {
		e.Time = Now()
	}
	c.mu.Lock()
	c.post[p] = append(c.post[p], e)
	c.mu.Unlock()
}

// Close releases the buffers and the board.
func (c *Collector) Close() {
	for _, b := range c.bufs {
		b.Close()
	}
	c.bufs = nil
	if c.Board != nil {
		c.Board.Close()
		c.Board = nil
	}
}

// Merge reads every buffer and returns the whole trace, ordered by time.
// A buffer that overflowed gives an Overflow entry and an "overflow" event
// on that lane: missing events are never silent.
func (c *Collector) Merge() (*Trace, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &Trace{Version: Version, Script: c.Script, Procs: c.Procs, Objects: c.Objects, Uncarried: c.uncarried}
	decl := make(map[[2]string]string, len(c.Objects))
	for _, o := range c.Objects {
		decl[[2]string{o.Kind, o.Name}] = o.Decl
	}
	dec := decoder{in: interner{}, noAccessFields: c.NoAccessFields}
	var lastKind, lastObject, lastDecl string // the last event's object, and its declaration
	// Room for every recorded event at once: growing a slice of large
	// events by appending copied each one several times (most of a
	// 200k-event merge's time).
	total := 0
	for p, b := range c.bufs {
		n, _ := b.Stats()
		total += int(n) + len(c.post[p]) + 1
	}
	t.Events = make([]Event, 0, total)
	lanes := make([]int, 0, len(c.bufs)+1) // where each process's events begin in t.Events
	for p, b := range c.bufs {
		name := c.Procs[p].Name
		var last *Event
		start := len(t.Events)
		lanes = append(lanes, start)
		dec.next()
		err := b.Records(func(rec []byte) error {
			t.Events = append(t.Events, Event{P: p, Proc: name})
			e := &t.Events[len(t.Events)-1]
			if err := dec.decode(rec, e); err != nil {
				return err
			}
			if e.Kind != "" {
				// interned: the last object's comparison is a pointer's
				if e.Kind != lastKind || e.Object != lastObject {
					lastKind, lastObject, lastDecl = e.Kind, e.Object, decl[[2]string{e.Kind, e.Object}]
				}
				e.Decl = lastDecl
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("process %q: %w", name, err)
		}
		if n := len(t.Events); n > start {
			last = &t.Events[n-1]
		}
		vc := make(VC, len(c.Procs))
		var seq uint64
		var at int64
		if last != nil {
			vc = last.VC.Clone()
			seq = last.Seq
			at = last.Time
			if last.End > at {
				at = last.End
			}
		}
		count, dropped := b.Stats()
		extra := c.post[p]
		if dropped > 0 {
			t.Overflow = append(t.Overflow, Overflow{Proc: name, Recorded: count, Dropped: dropped})
			extra = append([]Event{{Op: OpOverflow, Time: at, Label: fmt.Sprintf("%d events dropped: the buffer was full", dropped),
				Fields: map[string]any{"dropped": dropped}}}, extra...)
		}
		for _, e := range extra {
			seq++
			vc = vc.Clone()
			if e.VC != nil { // what it picked up (an exec'd program's input)
				vc = vc.Merge(e.VC)
			}
			for len(vc) <= p {
				vc = append(vc, 0)
			}
			vc[p] = seq
			e.P, e.Proc, e.Seq, e.VC = p, name, seq, vc
			if e.Time < at {
				e.Time = at
			}
			at = e.Time
			if e.Kind != "" && e.Decl == "" {
				e.Decl = decl[[2]string{e.Kind, e.Object}]
			}
			t.Events = append(t.Events, e)
		}
	}
	sortLanes(t.Events, append(lanes, len(t.Events)))
	return t, nil
}

// sortLanes is Sort for events that come lane by lane (process p's from
// lanes[p] to lanes[p+1]), each lane in sequence order, as Merge makes
// them. When every lane's events also complete in order (a process's
// next operation begins after its last one ended), Sort's order is
// (Done, P, Seq), the one order of those keys: the lanes are merged by
// it, each event moved once, where sort.SliceStable moved every event
// (a few hundred bytes) many times (most of a merge's cost). Otherwise
// Sort.
func sortLanes(ev []Event, lanes []int) {
	k := len(lanes) - 1
	for l := 0; l < k; l++ {
		for i := lanes[l] + 1; i < lanes[l+1]; i++ {
			if a, b := &ev[i-1], &ev[i]; a.P != b.P || a.Seq >= b.Seq || a.Done() > b.Done() {
				Sort(ev)
				return
			}
		}
	}
	// order[i]: the position in ev of the event that goes at i
	order := make([]int32, 0, len(ev))
	next := append([]int(nil), lanes[:k]...) // each lane's first event not yet placed
	less := func(x, y int) bool {            // lane x's next event before lane y's
		a, b := &ev[next[x]], &ev[next[y]]
		if da, db := a.Done(), b.Done(); da != db {
			return da < db
		}
		return a.P < b.P
	}
	h := make([]int, 0, k) // a min-heap of the lanes with events left
	down := func(i int) {
		for {
			m := i
			if l := 2*i + 1; l < len(h) && less(h[l], h[m]) {
				m = l
			}
			if r := 2*i + 2; r < len(h) && less(h[r], h[m]) {
				m = r
			}
			if m == i {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for l := 0; l < k; l++ {
		if lanes[l] < lanes[l+1] {
			h = append(h, l)
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for len(h) > 0 {
		l := h[0]
		order = append(order, int32(next[l]))
		if next[l]++; next[l] == lanes[l+1] {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(0)
	}
	// Put each event where order says, following the permutation's
	// cycles (a placed event's entry becomes -1).
	for i := range order {
		if order[i] < 0 || int(order[i]) == i {
			continue
		}
		tmp := ev[i]
		j := i
		for {
			from := int(order[j])
			order[j] = -1
			if from == i {
				ev[j] = tmp
				break
			}
			ev[j] = ev[from]
			j = from
		}
	}
}

// Sort orders events by when they completed (End for an interval, Time
// for the rest), then by process and sequence. Completion order respects
// happens-before: the clock a wait picks up was left before the wait woke.
func Sort(ev []Event) {
	sort.SliceStable(ev, func(i, j int) bool {
		a, b := &ev[i], &ev[j]
		if a.P == b.P {
			return a.Seq < b.Seq
		}
		if ka, kb := a.Done(), b.Done(); ka != kb {
			return ka < kb
		}
		return a.P < b.P
	})
}
