package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// The ratio columns: ipcscript ÷ peer.
var ratioCols = []struct{ ipc, peer impl }{
	{implLua, implPy}, {implLua, implC}, {implGo, implPy}, {implGo, implC},
}

// target is one of the targets, read off this run's figures: the
// ratio of the ipcscript cell (row, im) to the peer cell (peerRow, peer),
// repeat by repeat (the implementations of a row take turns within each
// repeat, so repeat r of one is paired with repeat r of the other), or the
// ipcscript figure itself when peerRow is empty. It is met only when the
// median meets bound and the worst repeat meets worst (bound when 0).
type target struct {
	what          string
	row           string
	im            impl
	peerRow       string
	peer          impl
	atLeast       bool // the figure must be ≥ bound (else ≤)
	bound         float64
	worst         float64 // the bound for the worst repeat; 0: bound
	informational bool    // no bound: shown for reference
}

// The targets of issue 12 (and those of issue 5 it keeps).
var targets = []target{
	{what: "round trip, 2 CPUs: Lua direct link ÷ C pipe", row: "rtt-link-2cpu", im: implLua, peerRow: "rtt-link-2cpu", peer: implC, bound: 1.0, worst: 1.3},
	{what: "round trip, 1 CPU: Lua direct link ÷ C pipe", row: "rtt-link-1cpu", im: implLua, peerRow: "rtt-link-1cpu", peer: implC, bound: 2.0},
	{what: "mailbox 1→1, cap 64: Lua ÷ C shm ring", row: "tput-cap64", im: implLua, peerRow: "tput-cap64", peer: implC, atLeast: true, bound: 0.5},
	{what: "mailbox 1→1, unbounded: Lua ÷ C shm ring", row: "tput-unbounded", im: implLua, peerRow: "tput-unbounded", peer: implC, atLeast: true, bound: 0.5},
	{what: "mailbox 1→1, cap 64: Lua ÷ Python Queue", row: "tput-cap64", im: implLua, peerRow: "tput-cap64", peer: implPy, atLeast: true, bound: 6},
	{what: "mailbox 1→1, unbounded: Lua ÷ Python Queue", row: "tput-unbounded", im: implLua, peerRow: "tput-unbounded", peer: implPy, atLeast: true, bound: 6},
	{what: "token ring, per hop: Lua ÷ C pipes", row: "token-ring", im: implLua, peerRow: "token-ring", peer: implC, bound: 2.5},
	{what: "fan-in: Lua 16→1 ÷ Lua 1→1 (cap 64)", row: "tput-16x1", im: implLua, peerRow: "tput-cap64", peer: implLua, atLeast: true, bound: 0.6},
	{what: "launch per process: Lua ÷ bare re-exec", row: "launch-reexec", im: implLua, peerRow: "launch-reexec", peer: implGo, bound: 1.2},
	{what: "bare re-exec ÷ an empty Go program's exec", row: "launch-reexec", im: implGo, peerRow: "floor-mingo", peer: implGo, bound: 1.5},
	{what: "1 GiB through cap 64: largest peak RSS, MiB", row: "mem-sustained", im: implLua, bound: 24},
	{what: "mem:read 64 KiB: Lua ÷ C memcpy", row: "shm-read", im: implLua, peerRow: "shm-read", peer: implC, atLeast: true, bound: 0.5},
	{what: "mem:read 64 KiB changed each time: Lua ÷ C memcpy", row: "shm-read-changing", im: implLua, peerRow: "shm-read-changing", peer: implC, atLeast: true, bound: 0.5},
	{what: "bulk pipe: Lua ÷ C", row: "bulk-pipe", im: implLua, peerRow: "bulk-pipe", peer: implC, atLeast: true, bound: 0.9},
	{what: "bulk unix socket: Lua ÷ C", row: "bulk-unix", im: implLua, peerRow: "bulk-unix", peer: implC, atLeast: true, bound: 0.7},
	{what: "launch per process: Lua ÷ Python spawn (issue 5)", row: "launch-spawn", im: implLua, peerRow: "launch-spawn", peer: implPy, bound: 0.125},
	{what: "peak RSS of an idle Lua process, MiB (issue 5)", row: "mem-idle", im: implLua, bound: 16},
	{what: "--race on a shm loop: Lua get+set with --race ÷ without (issue 11: cost ≤ 10×)", row: "shm-getset-race", im: implLua, peerRow: "shm-getset", peer: implLua, atLeast: true, bound: 0.1},
	{what: "tracing on: Lua mailbox 1→1 cap 64 with --trace ÷ without (issue 10: ≥ 50%)", row: "trace-tput-cap64", im: implLua, peerRow: "tput-cap64", peer: implLua, atLeast: true, bound: 0.5},
	{what: "(for reference) tracing on: Lua mailbox round trip, 1 CPU, with --trace ÷ without", row: "trace-rtt-mailbox-1cpu", im: implLua, peerRow: "rtt-mailbox-1cpu", peer: implLua, informational: true},
	{what: "a trace of the row's size (1M events; --quick: 10k) written as .jsonl, seconds (issue 10: ≤ 2)", row: "trace-jsonl", im: implGo, bound: 2},
	{what: "its .html's first paint in headless Chromium, seconds (issue 10, 1M events: ≤ 3)", row: "trace-html", im: implGo, bound: 3},
	{what: "(for reference) 2 CPUs: Python Pipe ÷ C pipe", row: "rtt-link-2cpu", im: implPy, peerRow: "rtt-link-2cpu", peer: implC, informational: true},
}

// The launch-reexec row has no Lua cell of its own: its Lua figure is the
// launch-spawn row's.
var targetRowAlias = map[string]map[impl]string{"launch-reexec": {implLua: "launch-spawn"}}

func (r *results) row(id string) *rowResult {
	for i := range r.rows {
		if r.rows[i].c.id == id {
			return &r.rows[i]
		}
	}
	return nil
}

// samples of one cell in run order, or nil when it has no figure.
func (r *results) samples(rowID string, im impl) []float64 {
	if alias, ok := targetRowAlias[rowID][im]; ok {
		rowID = alias
	}
	row := r.row(rowID)
	if row == nil || row.cells[im] == nil || row.cells[im].err != nil {
		return nil
	}
	return row.cells[im].values(row.c.metric)
}

// pairedRatios divides a[i] by b[i], repeat by repeat.
func pairedRatios(a, b []float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if b[i] != 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// targetCells holds the cells (cellKey) that a target reads, and
// targetRows their rows: a row no target reads takes 3 repeats unless
// --repeats says otherwise, and only a target's cells gather runs
// (benchCase.minSecs). Informational targets read none.
var targetCells, targetRows = func() (map[string]bool, map[string]bool) {
	cells, rows := map[string]bool{}, map[string]bool{}
	for _, t := range targets {
		if t.informational {
			continue
		}
		for _, c := range []struct {
			row string
			im  impl
		}{{t.row, t.im}, {t.peerRow, t.peer}} {
			if c.row == "" {
				continue
			}
			if alias := targetRowAlias[c.row][c.im]; alias != "" {
				c.row = alias
			}
			cells[cellKey(c.row, c.im)], rows[c.row] = true, true
		}
	}
	return cells, rows
}()

func cellKey(row string, im impl) string { return row + "/" + implKeys[im] }

type targetResult struct {
	What    string    `json:"what"`
	Bound   string    `json:"bound"`
	Value   *float64  `json:"value"` // the median
	Worst   *float64  `json:"worst"`
	Repeats []float64 `json:"repeats,omitempty"`
	Status  string    `json:"status"`
}

func (r *results) evalTargets() []targetResult {
	var out []targetResult
	for _, t := range targets {
		op := "≤"
		if t.atLeast {
			op = "≥"
		}
		worstBound := t.worst
		if worstBound == 0 {
			worstBound = t.bound
		}
		tr := targetResult{What: t.what, Bound: fmt.Sprintf("%s %g", op, t.bound), Status: "not measured"}
		if worstBound != t.bound {
			tr.Bound += fmt.Sprintf(", worst %s %g", op, worstBound)
		}
		if t.informational {
			tr.Bound = ""
		}
		vs := r.samples(t.row, t.im)
		if t.peerRow != "" {
			vs = pairedRatios(vs, r.samples(t.peerRow, t.peer))
		}
		if len(vs) > 0 {
			s := summarise(vs)
			worst := s.Max
			if t.atLeast {
				worst = s.Min
			}
			tr.Value, tr.Worst, tr.Repeats = &s.Median, &worst, vs
			meets := func(v, b float64) bool {
				if t.atLeast {
					return v >= b
				}
				return v <= b
			}
			short := func(v, b float64) string {
				if t.atLeast {
					return fmt.Sprintf("%.2f× short", b/v)
				}
				return fmt.Sprintf("%.2f× over", v/b)
			}
			switch {
			case t.informational:
				tr.Status = ""
			case !meets(s.Median, t.bound):
				tr.Status = "missed: median " + short(s.Median, t.bound)
			case !meets(worst, worstBound):
				tr.Status = "missed: median met, worst " + short(worst, worstBound)
			default:
				tr.Status = "met"
			}
		}
		out = append(out, tr)
	}
	return out
}

func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// spreadFlag is the spread (half the min–max range over the median) above
// which a cell is flagged: its figure moved too much between repeats to be
// read on its own.
const spreadFlag = 0.25

func cellText(m *measurement, mt metric) string {
	switch {
	case m == nil || m.why != "":
		return "—"
	case m.err != nil:
		return "error"
	}
	vs := m.values(mt)
	if len(vs) == 0 {
		return "—"
	}
	s := summarise(vs)
	if len(vs) == 1 {
		return fmtNum(s.Median)
	}
	worst := s.Max
	if mt.higher {
		worst = s.Min
	}
	flag := ""
	if s.spread() > spreadFlag {
		flag = "!"
	}
	return fmt.Sprintf("%s /%s ±%.0f%%%s", fmtNum(s.Median), fmtNum(worst), 100*s.spread(), flag)
}

// flagged says whether a cell of the row spreads over spreadFlag.
func flagged(row rowResult) bool {
	for _, m := range row.cells {
		if m == nil || m.why != "" || m.err != nil {
			continue
		}
		if vs := m.values(row.c.metric); len(vs) > 1 && summarise(vs).spread() > spreadFlag {
			return true
		}
	}
	return false
}

// ratio is the median of the repeat-by-repeat ratios of two cells.
func ratio(row rowResult, a, b impl) (float64, bool) {
	ma, mb := row.cells[a], row.cells[b]
	if ma == nil || mb == nil || ma.err != nil || mb.err != nil {
		return 0, false
	}
	rs := pairedRatios(ma.values(row.c.metric), mb.values(row.c.metric))
	if len(rs) == 0 {
		return 0, false
	}
	return summarise(rs).Median, true
}

func writeTable(w io.Writer, r *results) {
	m := r.mach
	fmt.Fprintf(w, "ipcscript benchmark · %s · %d × %s · %s · Linux %s · %s · %s · %s · load %s at the start, %s at the end\n",
		m.Date, m.CPUs, m.CPU, m.Virt, m.Kernel, m.Go, m.CC, m.Python, m.Load, m.LoadEnd)
	runs := fmt.Sprintf("median /worst of %d runs ±half the min–max range (%% of the median), ! when that is over %.0f%%", r.repeats, 100*spreadFlag)
	if r.repeats == 1 {
		runs = "one run"
	}
	if r.quick {
		runs += ", --quick counts (a smoke run, not a measurement)"
	}
	fmt.Fprintf(w, "cells: %s; — = no such mechanism, not wired or not built (see notes)\n", runs)
	fmt.Fprintf(w, "ratios: ipcscript ÷ peer, in the row's unit, the median of the repeat-by-repeat ratios (the implementations of a row take turns in each repeat): on ↑ rows (higher is better) >1 means ipcscript is better; on ↓ rows (lower is better) <1 does\n\n")

	head := []string{"case", "unit"}
	for _, t := range implTitles {
		head = append(head, t)
	}
	for _, rc := range ratioCols {
		head = append(head, shortTitle(rc.ipc)+"÷"+shortTitle(rc.peer))
	}
	head = append(head, "secs")
	rows := [][]string{head}
	group := 0
	var groupAt []int // indexes of group heading rows
	for _, row := range r.rows {
		if row.c.group != group {
			group = row.c.group
			groupAt = append(groupAt, len(rows))
			rows = append(rows, []string{groups[group]})
		}
		title := "  " + row.c.title
		if flagged(row) {
			title = "! " + row.c.title
		}
		line := []string{title, row.c.metric.unit}
		for im := range numImpls {
			line = append(line, cellText(row.cells[im], row.c.metric))
		}
		for _, rc := range ratioCols {
			if v, ok := ratio(row, rc.ipc, rc.peer); ok {
				line = append(line, fmtNum(v)+"×")
			} else {
				line = append(line, "")
			}
		}
		line = append(line, fmt.Sprintf("%.1f", row.secs))
		rows = append(rows, line)
	}
	printAligned(w, rows, groupAt)

	fmt.Fprintln(w)
	fmt.Fprintln(w, "notes:")
	for _, n := range r.notes() {
		fmt.Fprintln(w, "  "+strings.ReplaceAll(n, "\n", "\n    "))
	}
	if errs := r.errors(); len(errs) > 0 {
		fmt.Fprintln(w, "\nfailures:")
		for _, e := range errs {
			fmt.Fprintln(w, "  "+strings.ReplaceAll(e, "\n", "\n  "))
		}
	}
	fmt.Fprintln(w, "\ntargets (issue 12), repeat-by-repeat ratios: median, worst; met only when the worst repeat meets it too:")
	trs := r.evalTargets()
	var widths [4]int
	cols := make([][4]string, 0, len(trs)+1)
	cols = append(cols, [4]string{"", "bound", "median", "worst"})
	for _, t := range trs {
		v, wv := "—", "—"
		if t.Value != nil {
			v, wv = fmtNum(*t.Value), fmtNum(*t.Worst)
		}
		cols = append(cols, [4]string{t.What, t.Bound, v, wv})
	}
	for _, c := range cols {
		for j, cell := range c {
			widths[j] = max(widths[j], utf8.RuneCountInString(cell))
		}
	}
	for i, c := range cols {
		status := ""
		if i > 0 {
			status = trs[i-1].Status
		}
		fmt.Fprintf(w, "  %s  %s  %*s  %*s  %s\n", pad(c[0], widths[0]), pad(c[1], widths[1]),
			widths[2], c[2], widths[3], c[3], status)
	}
	if len(r.leftovers) > 0 {
		fmt.Fprintf(w, "\nleft behind by a run, now removed: %s\n", strings.Join(r.leftovers, " "))
	}
	fmt.Fprintf(w, "\ntotal time: %.1f s\n", r.total.Seconds())
	if n := r.flaggedRows(); n > 0 {
		fmt.Fprintf(w, "%d row(s) flagged ! (spread over %.0f%%): read them as ranges, not figures\n", n, 100*spreadFlag)
	}
}

func (r *results) flaggedRows() int {
	n := 0
	for _, row := range r.rows {
		if flagged(row) {
			n++
		}
	}
	return n
}

func shortTitle(im impl) string {
	if im == implPy {
		return "Py"
	}
	if im == implGo {
		return "Go"
	}
	return implTitles[im]
}

// printAligned prints rows in columns: the first column left-aligned, the
// others right-aligned; rows listed in spanning are printed as they are.
func printAligned(w io.Writer, rows [][]string, spanning []int) {
	span := map[int]bool{}
	for _, i := range spanning {
		span[i] = true
	}
	var widths []int
	for i, row := range rows {
		if span[i] {
			continue
		}
		for j, cell := range row {
			if j >= len(widths) {
				widths = append(widths, 0)
			}
			widths[j] = max(widths[j], utf8.RuneCountInString(cell))
		}
	}
	for i, row := range rows {
		if span[i] {
			fmt.Fprintln(w, row[0])
			continue
		}
		var b strings.Builder
		for j, cell := range row {
			if j == 0 || j == 1 {
				b.WriteString(pad(cell, widths[j]))
			} else {
				b.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(cell)) + cell)
			}
			b.WriteString("  ")
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func pad(s string, width int) string {
	return s + strings.Repeat(" ", max(0, width-utf8.RuneCountInString(s)))
}

// notes explain the rows and every "—" of the table.
func (r *results) notes() []string {
	notes := []string{
		"1 CPU: every process of the run pinned to CPU 0; 2 CPUs: placement left to the scheduler, which differs from run to run (a wake-up across CPUs costs several times one on the same CPU here): expect a wide spread.",
		"C in the direct-link rows: a pipe each way (the issue's yardstick); in the mailbox rows: 64 bytes in shared memory handed over with process-shared semaphores, the mechanism ipcscript's queues are built on. Python: multiprocessing.Pipe (link), multiprocessing.Queue (mailbox, throughput), fork start method, half the round trips of the others in the link and mailbox rows (see --json, \"ops\": at 2-5x C's time they still last ~0.2 s); every Python peer runs as python3 -S (no site module: the peers use the standard library only, and a machine's site-packages hooks are not Python's cost). Lua receives into a table it owns ({into = t}) in the round-trip, throughput and token-ring scripts.",
		"Go API: the ipc package called from Go, no Lua, between this bench binary's re-executed workers that inherit every object through ExtraFiles as the runtime's children do: direct link = an ipc.Queue inbox per process (per-sender capacity), mailbox = ipc.Queue, pipe = blocking read/write on the inherited *os.File (as the runtime's pipes), unix socket = ipc.Listen/ipc.Dial streams, mqueue = ipc.Mqueue, semaphore = ipc.Semaphore + ipc.Shm; bodies are the 64 raw bytes (Lua's carry MessagePack).",
		"throughput: C is a shared-memory ring with semaphores (\"unbounded\": room for every message); time from releasing every worker until every consumer has taken its last message; Python's runs send an eighth of the messages (see --json, \"ops\"): at ~1/10 the rate of the others they still last ~0.3 s.",
		"shared-memory rates: the counts differ per implementation (see --json, \"ops\") so that each run lasts long enough; Python's atomic add is a RawValue under a Lock; C's mutex is process-shared and robust.",
		"launch: the ipcscript cells are one measurement shown against both peers; Go API: the bench binary re-executed with an inbox each (an ipc.Queue it maps), as the runtime hands its children theirs; bare re-exec: the ipcscript binary started with IPCSCRIPT_BARE_EXIT=1, which exits at the top of main. Python's spawn starts fewer processes (the figure is per process; each costs ~25x an ipcscript child).",
		"memory: the harness reads VmHWM from /proc/PID/status of the run's processes every 5 ms (or twice as long as its last sample took, at most 25 ms) while the workers sleep 250 ms; \"1 idle process\" is that worker's peak, \"Σ over the run\" the sum of the peaks of every process of the run (parent and helpers included). Python workers use the spawn start method. The sustained row pushes that many bytes in 16 KiB bodies through a capacity-64 mailbox (tput.lua, one producer, one consumer) and shows the largest peak of any process of the run (supervisor, coordinator, producer, consumer).",
		"fan-in (16→1): 200,000 messages (as 1→1, which the target divides it by), C 40,000 (its ring with 16 producers takes a mutex per put: ~1/3 the rate); Python's peer takes equal producer and consumer counts only. The target divides the Lua 16→1 figure by the Lua 1→1 cap-64 figure of the same repeat.",
		"token ring: node 1 times laps after a warm-up lap (launch excluded); Lua: direct links, C: a pipe per hop; at most 3 repeats (starting and ending 256 processes is ~95% of a run).",
		"mem:read: one process reads the same 64 KiB of an ipc.shm block (a read of unchanged bytes returns the previous string: a compare, no copy); \"changed each time\" rewrites one byte before each read (a new string each read: one copy, no zeroing). C: memcpy of 64 KiB from a MAP_SHARED mapping into a private buffer.",
		"floors: measured in this run on this machine (the system call: 200,000 getppid); the pipe round trips are the C cells of the pipe rows (one measurement shown twice); the static C program is peers/c/exit0_static.c, the empty Go program tests/bench/floor/mingo (CGO_ENABLED=0).",
	}
	seen := map[string]bool{}
	for _, row := range r.rows {
		for im := range numImpls {
			m := row.cells[im]
			if m == nil || m.why == "" || m.why == "not selected" {
				continue
			}
			n := fmt.Sprintf("%s —: %s", implTitles[im], m.why)
			if !seen[n] {
				seen[n] = true
				notes = append(notes, n)
			}
		}
	}
	return notes
}

func (r *results) errors() []string {
	var errs []string
	seen := map[*measurement]bool{}
	for _, row := range r.rows {
		for im := range numImpls {
			m := row.cells[im]
			if m != nil && m.err != nil && !seen[m] {
				seen[m] = true
				errs = append(errs, fmt.Sprintf("%s %s: %v", row.c.id, implTitles[im], m.err))
			}
		}
	}
	return errs
}

// The --json form.
type jsonResults struct {
	Machine   machine        `json:"machine"`
	Repeats   int            `json:"repeats"`
	Quick     bool           `json:"quick"`
	Cases     []jsonCase     `json:"cases"`
	Targets   []targetResult `json:"targets"`
	Notes     []string       `json:"notes"`
	Leftovers []string       `json:"leftovers,omitempty"`
	TotalSecs float64        `json:"total_secs"`
}

type jsonCase struct {
	ID           string              `json:"id"`
	Group        int                 `json:"group"`
	Title        string              `json:"title"`
	Unit         string              `json:"unit"`
	HigherBetter bool                `json:"higher_is_better"`
	CPUs         []int               `json:"cpus,omitempty"`
	Secs         float64             `json:"secs"`
	Cells        map[string]jsonCell `json:"cells"`
	Ratios       map[string]float64  `json:"ratios"`
}

type jsonCell struct {
	Command []string  `json:"command"`
	Stats   *stats    `json:"stats,omitempty"`
	Why     string    `json:"why,omitempty"`
	Error   string    `json:"error,omitempty"`
	Runs    []figures `json:"runs,omitempty"`
}

func writeJSON(w io.Writer, r *results) error {
	out := jsonResults{
		Machine: r.mach, Repeats: r.repeats, Quick: r.quick,
		Targets: r.evalTargets(), Notes: r.notes(), Leftovers: r.leftovers,
		TotalSecs: r.total.Seconds(),
	}
	for _, row := range r.rows {
		jc := jsonCase{
			ID: row.c.id, Group: row.c.group, Title: row.c.title, Unit: row.c.metric.unit,
			HigherBetter: row.c.metric.higher, CPUs: row.c.cpus, Secs: row.secs,
			Cells: map[string]jsonCell{}, Ratios: map[string]float64{},
		}
		for im := range numImpls {
			m := row.cells[im]
			if m == nil {
				continue
			}
			cell := jsonCell{Command: append(append(append([]string(nil), m.cmd.flags...), m.cmd.prog), m.cmd.args...), Why: m.why, Runs: m.runs}
			if m.err != nil {
				cell.Error = m.err.Error()
			}
			if vs := m.values(row.c.metric); len(vs) > 0 && m.err == nil {
				s := summarise(vs)
				cell.Stats = &s
			}
			jc.Cells[implKeys[im]] = cell
		}
		for _, rc := range ratioCols {
			if v, ok := ratio(row, rc.ipc, rc.peer); ok {
				jc.Ratios[implKeys[rc.ipc]+"/"+implKeys[rc.peer]] = v
			}
		}
		out.Cases = append(out.Cases, jc)
	}
	sort.SliceStable(out.Cases, func(i, j int) bool { return out.Cases[i].Group < out.Cases[j].Group })
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
