package runtime

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/trace"
)

// TraceOptions say whether and where a run is recorded (docs/TRACING.md).
// Tracing is on when Path is set, W is set, or Record is true.
type TraceOptions struct {
	Path   string    // write the trace here; the extension picks the view (.jsonl .json .shiviz .mmd .html)
	W      io.Writer // or write it here, in Format
	Format string    // with W: ".jsonl" (default), ".json", ".shiviz", ".mmd", ".html"
	Record bool      // only put the events on the Report (Report.Trace)
	Limit  int       // .mmd: at most this many events (0: trace.DefaultMermaidLimit)
	Buffer int       // bytes of shared memory per process for its events (0: trace.DefaultBuffer)
}

func (o *TraceOptions) on() bool { return o.Path != "" || o.W != nil || o.Record }

// tracer is the supervisor's side of a traced run.
type tracer struct {
	col *trace.Collector
	idx map[*bindings.Process]int
	// stdin: per exec'd program whose stdin is a pipe or FIFO, a copy of
	// its read end, to ask when it ends how much it left unread.
	stdin   map[*child]*os.File
	stdinMu sync.Mutex // launches and exits may come from more than one goroutine
	// uncarried: a spawned process was beyond the board's lanes (warned once)
	uncarried bool
}

// traceBegin creates the buffers and the clock board, once the processes
// and objects are all declared (nothing when tracing is off).
func (sup *supervisor) traceBegin() error {
	o := &sup.s.opts.Trace
	if !o.on() {
		return nil
	}
	if o.Path != "" {
		if _, err := trace.FormatOf(o.Path); err != nil {
			return err
		}
	}
	env := sup.s.env
	t := &tracer{idx: map[*bindings.Process]int{}, stdin: map[*child]*os.File{}}
	var procs []trace.Proc
	for i, p := range env.Procs {
		procs = append(procs, trace.Proc{Name: p.Name, Group: p.Group})
		t.idx[p] = i
	}
	var objs []trace.Object
	for _, d := range env.Decls {
		if d.Kind == "process" {
			continue
		}
		objs = append(objs, trace.Object{Kind: d.Kind, Name: d.Name, Decl: d.Line})
	}
	// A run that may spawn: the board keeps clock components for as many
	// spawned processes as --max-procs allows live at once and its memory
	// budget holds (trace.SpawnLanes); the trace says so when more come.
	lanes := 0
	if len(env.Templates) > 0 {
		maxProcs := env.MaxProcs
		if maxProcs <= 0 {
			maxProcs = bindings.DefaultMaxProcs
		}
		lanes = trace.SpawnLanes(len(env.Decls), len(procs), maxProcs)
	}
	col, err := trace.NewSpawnCollector(sup.s.name, procs, objs, len(env.Decls), lanes, o.Buffer)
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	col.NoAccessFields = sup.raceOnly
	t.col = col
	sup.trace = t
	return nil
}

// traceFiles adds the process's buffer and the board to the descriptors a
// child inherits and says where they are in the manifest.
func (sup *supervisor) traceFiles(c *child, m *bindings.Manifest, files []*os.File) []*os.File {
	t := sup.trace
	if t == nil {
		return files
	}
	i, ok := t.idx[c.p]
	if !ok { // a process made at run time: a lane of its own from now on
		carried, err := false, error(nil)
		if i, carried, err = t.col.AddProc(trace.Proc{Name: c.p.Name, Group: c.p.Group}); err != nil {
			sup.warnf("trace: process %q is not recorded: %v", c.p.Name, err)
			return files
		}
		t.idx[c.p] = i
		if !carried && !t.uncarried {
			t.uncarried = true
			sup.warnf("trace: process %q and those spawned after it are beyond the %d lanes of the clock board: their events reach others' clocks through messages only (the trace's header says so, under \"uncarried\")", c.p.Name, t.col.Board.Lanes())
		}
	}
	m.TraceProc = i + 1
	m.TraceBuf = 3 + len(files)
	files = append(files, t.col.Buffer(i).File())
	m.TraceBoard = 3 + len(files)
	return append(files, t.col.Board.File())
}

// traceSpawning records the spawn as the process's first event, before it
// can record anything itself.
func (sup *supervisor) traceSpawning(c *child) {
	if t := sup.trace; t != nil {
		if i, ok := t.idx[c.p]; ok {
			if c.spawned { // the spawner's event is its cause
				t.col.SpawnedBy(i, c.spawnClock)
			} else {
				t.col.Spawned(i)
			}
			if c.p.Exec != nil { // its output's reads name its spawn
				var objs []int
				for _, d := range []*bindings.Decl{c.p.Stdout, c.p.Stderr} {
					if d != nil {
						objs = append(objs, d.Index)
					}
				}
				t.col.SpawnedWriter(i, objs...)
				sup.traceStdin(c)
			}
		}
	}
}

// traceStdin keeps a copy of the read end of an exec'd program's stdin
// (a pipe or a FIFO of the run), so that when the program ends the
// supervisor can ask the kernel how many bytes it left unread: the
// bytes before those it read, and its exit comes after their writes.
// The copy is closed as soon as the program is reaped (writers that
// the program's end would have given EPIPE get it then).
func (sup *supervisor) traceStdin(c *child) {
	d := c.p.Stdin
	if d == nil || (d.Kind != "pipe" && d.Kind != "fifo") {
		return
	}
	f := d.File("r")
	if f == nil {
		return
	}
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return
	}
	sup.trace.stdinMu.Lock()
	sup.trace.stdin[c] = os.NewFile(uintptr(fd), "traced stdin")
	sup.trace.stdinMu.Unlock()
}

// traceInput gives the exit of an exec'd program the clocks of the writes
// of the bytes it read from its stdin, and the last of them as cause.
func (sup *supervisor) traceInput(c *child, e *trace.Event) {
	sup.trace.stdinMu.Lock()
	f, ok := sup.trace.stdin[c]
	delete(sup.trace.stdin, c)
	sup.trace.stdinMu.Unlock()
	if !ok {
		return
	}
	defer f.Close()
	unread, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ) // FIONREAD
	if err != nil {
		return
	}
	if cause, vc, ok := sup.trace.col.Board.StreamConsumed(c.p.Stdin.Index, int64(unread)); ok {
		e.Cause, e.VC = &cause, vc
	}
}

// traceExited records how a process ended.
func (sup *supervisor) traceExited(c *child) {
	t := sup.trace
	if t == nil {
		return
	}
	i, ok := t.idx[c.p]
	if !ok {
		return
	}
	t.col.SetPid(i, c.p.Pid)
	e := trace.Event{Op: trace.OpExit, Fields: map[string]any{}}
	sup.traceInput(c, &e)
	switch {
	case c.err != nil:
		e.Outcome, e.Label = "error", "did not start: "+c.err.Error()
	case c.state != nil:
		e.Fields["code"] = c.state.ExitCode()
		if ws, ok := c.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Outcome = "signal"
			e.Fields["signal"] = unix.SignalName(ws.Signal())
			e.Label = "killed by " + unix.SignalName(ws.Signal())
		} else if c.state.ExitCode() != 0 {
			e.Outcome = "failed"
		}
	}
	if c.result.Error != "" {
		e.Outcome = "error"
		e.Label = c.result.Error
	}
	t.col.Add(i, e)
}

// traceStop records that the supervisor stops the run (reason: deadlock,
// timeout, interrupt, terminated, fail-fast) on every live process's lane.
func (sup *supervisor) traceStop(reason, detail string) {
	t := sup.trace
	if t == nil {
		return
	}
	if reason == "deadlock" && len(sup.children) > 0 {
		// the report, on the lane of the first process that is part of it
		at := 0
		for _, c := range sup.children {
			if i, ok := t.idx[c.p]; ok && c.state == nil && c.p.Pid != 0 && bytes.Contains([]byte(detail), []byte(c.p.Name)) {
				at = i
				break
			}
		}
		t.col.Add(at, trace.Event{Op: trace.OpDeadlock, Label: detail})
	}
	for _, c := range sup.children {
		if i, ok := t.idx[c.p]; ok && c.state == nil && c.p.Pid != 0 {
			t.col.Add(i, trace.Event{Op: trace.OpStop, Outcome: reason, Label: "the supervisor stops the run: SIGTERM"})
		}
	}
}

// traceKill records a SIGKILL after the grace period.
func (sup *supervisor) traceKill(c *child) {
	if t := sup.trace; t != nil {
		i, ok := t.idx[c.p]
		if !ok {
			return
		}
		t.col.Add(i, trace.Event{Op: trace.OpKill, Label: "SIGKILL after the grace period", Fields: map[string]any{"signal": "SIGKILL"}})
	}
}

// traceEnd merges the buffers, writes the trace and puts it on the report.
func (sup *supervisor) traceEnd(rep *Report) {
	t := sup.trace
	if t == nil {
		return
	}
	defer t.col.Close()
	t.stdinMu.Lock()
	for c, f := range t.stdin { // a program that never started
		f.Close()
		delete(t.stdin, c)
	}
	t.stdinMu.Unlock()
	for _, c := range sup.children {
		if i, ok := t.idx[c.p]; ok {
			t.col.SetPid(i, c.p.Pid)
		}
	}
	tr, err := t.col.Merge()
	if err != nil {
		sup.errorf("trace: %v", err)
		return
	}
	rep.Trace = tr
	for _, ov := range tr.Overflow {
		sup.warnf("trace: process %q recorded %d events and dropped %d (its buffer was full; raise it with TraceOptions.Buffer)", ov.Proc, ov.Recorded, ov.Dropped)
	}
	o := &sup.s.opts.Trace
	switch {
	case o.Path != "":
		if err := trace.WriteFile(o.Path, tr, trace.Options{Limit: o.Limit}); err != nil {
			sup.errorf("%v", err)
			return
		}
		rep.TracePath = o.Path
	case o.W != nil:
		f := o.Format
		if f == "" {
			f = ".jsonl"
		}
		if err := trace.WriteFormat(o.W, f, tr, trace.Options{Limit: o.Limit}); err != nil {
			sup.errorf("trace: %v", err)
		}
	}
}

// traceKilled records the SIGKILLs sent to process groups after the grace
// period (called from the kill timer's goroutine).
func (sup *supervisor) traceKilled(groups []int) {
	if sup.trace == nil {
		return
	}
	for _, c := range sup.children {
		for _, g := range groups {
			if c.p.Pid == g {
				sup.traceKill(c)
			}
		}
	}
}

// openRecorder maps a child's trace buffer and the run's clock board.
func openRecorder(m *bindings.Manifest) (*trace.Recorder, error) {
	buf, err := trace.OpenBuffer(os.NewFile(uintptr(m.TraceBuf), "trace buffer"))
	if err != nil {
		return nil, err
	}
	board, err := trace.OpenBoard(os.NewFile(uintptr(m.TraceBoard), "trace board"))
	if err != nil {
		return nil, err
	}
	p := m.TraceProc - 1 // its lane
	r := trace.NewRecorder(p, len(m.Procs), buf, board)
	r.Resume()
	return r, nil
}
