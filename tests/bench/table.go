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
// ratio of the ipcscript cell (row, im) to the peer cell (peerRow, peer), or
// the ipcscript figure itself when peerRow is empty.
type target struct {
	what          string
	row           string
	im            impl
	peerRow       string
	peer          impl
	atLeast       bool // the figure must be ≥ bound (else ≤)
	bound         float64
	informational bool // no bound: shown for reference
}

var targets = []target{
	{what: "mailbox throughput, cap 64: Lua ÷ Python Queue", row: "tput-cap64", im: implLua, peerRow: "tput-cap64", peer: implPy, atLeast: true, bound: 4},
	{what: "mailbox throughput, unbounded: Lua ÷ Python Queue", row: "tput-unbounded", im: implLua, peerRow: "tput-unbounded", peer: implPy, atLeast: true, bound: 4},
	{what: "mailbox throughput, cap 64: Lua ÷ C shm ring", row: "tput-cap64", im: implLua, peerRow: "tput-cap64", peer: implC, atLeast: true, bound: 0.5},
	{what: "mailbox throughput, unbounded: Lua ÷ C shm ring", row: "tput-unbounded", im: implLua, peerRow: "tput-unbounded", peer: implC, atLeast: true, bound: 0.5},
	{what: "round trip, 1 CPU: Lua direct link ÷ C pipe", row: "rtt-link-1cpu", im: implLua, peerRow: "rtt-pipe-1cpu", peer: implC, bound: 1.3},
	{what: "round trip, 2 CPUs: Lua direct link ÷ C pipe", row: "rtt-link-2cpu", im: implLua, peerRow: "rtt-pipe-2cpu", peer: implC, bound: 1.3},
	{what: "(for reference) 1 CPU: Python Pipe ÷ C pipe", row: "rtt-link-1cpu", im: implPy, peerRow: "rtt-pipe-1cpu", peer: implC, informational: true},
	{what: "(for reference) 2 CPUs: Python Pipe ÷ C pipe", row: "rtt-link-2cpu", im: implPy, peerRow: "rtt-pipe-2cpu", peer: implC, informational: true},
	{what: "bulk pipe: Lua ÷ C", row: "bulk-pipe", im: implLua, peerRow: "bulk-pipe", peer: implC, atLeast: true, bound: 0.8},
	{what: "launch per process: Lua ÷ Python spawn (8× faster)", row: "launch-spawn", im: implLua, peerRow: "launch-spawn", peer: implPy, bound: 0.125},
	{what: "launch per process: Lua ÷ bare re-exec", row: "launch-reexec", im: implLua, peerRow: "launch-reexec", peer: implGo, bound: 1.5},
	{what: "peak RSS of an idle Lua process, MiB", row: "mem-idle", im: implLua, bound: 16},
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

// median of one cell, or false when it has no figure.
func (r *results) median(rowID string, im impl) (float64, bool) {
	if alias, ok := targetRowAlias[rowID][im]; ok {
		rowID = alias
	}
	row := r.row(rowID)
	if row == nil || row.cells[im] == nil {
		return 0, false
	}
	vs := row.cells[im].values(row.c.metric)
	if len(vs) == 0 || row.cells[im].err != nil {
		return 0, false
	}
	return summarise(vs).Median, true
}

type targetResult struct {
	What   string   `json:"what"`
	Bound  string   `json:"bound"`
	Value  *float64 `json:"value"`
	Status string   `json:"status"`
}

func (r *results) evalTargets() []targetResult {
	var out []targetResult
	for _, t := range targets {
		op := "≤"
		if t.atLeast {
			op = "≥"
		}
		tr := targetResult{What: t.what, Bound: fmt.Sprintf("%s %g", op, t.bound), Status: "not measured"}
		if t.informational {
			tr.Bound = ""
		}
		v, ok := r.median(t.row, t.im)
		if ok && t.peerRow != "" {
			p, pok := r.median(t.peerRow, t.peer)
			ok = pok && p != 0
			if ok {
				v /= p
			}
		}
		if ok {
			tr.Value = &v
			met := v <= t.bound
			if t.atLeast {
				met = v >= t.bound
			}
			switch {
			case t.informational:
				tr.Status = ""
			case met:
				tr.Status = "met"
			case t.atLeast:
				tr.Status = fmt.Sprintf("missed: %.2f× short", t.bound/v)
			default:
				tr.Status = fmt.Sprintf("missed: %.2f× over", v/t.bound)
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
	return fmt.Sprintf("%s ±%.0f%%", fmtNum(s.Median), 100*s.spread())
}

func ratio(row rowResult, a, b impl) (float64, bool) {
	ma, mb := row.cells[a], row.cells[b]
	if ma == nil || mb == nil || ma.err != nil || mb.err != nil {
		return 0, false
	}
	va, vb := ma.values(row.c.metric), mb.values(row.c.metric)
	if len(va) == 0 || len(vb) == 0 {
		return 0, false
	}
	d := summarise(vb).Median
	if d == 0 {
		return 0, false
	}
	return summarise(va).Median / d, true
}

func writeTable(w io.Writer, r *results) {
	m := r.mach
	fmt.Fprintf(w, "ipcscript benchmark · %s · %d × %s · Linux %s · %s · %s · %s · load %s\n",
		m.Date, m.CPUs, m.CPU, m.Kernel, m.Go, m.CC, m.Python, m.Load)
	runs := fmt.Sprintf("median of %d runs ±half the min–max range (%% of the median)", r.repeats)
	if r.repeats == 1 {
		runs = "one run"
	}
	if r.quick {
		runs += ", --quick counts (a smoke run, not a measurement)"
	}
	fmt.Fprintf(w, "cells: %s; — = no such mechanism, not wired or not built (see notes)\n", runs)
	fmt.Fprintf(w, "ratios: ipcscript ÷ peer, in the row's unit: on ↑ rows (higher is better) >1 means ipcscript is better; on ↓ rows (lower is better) <1 does\n\n")

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
		line := []string{"  " + row.c.title, row.c.metric.unit}
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
	fmt.Fprintln(w, "\ntargets (issue 5), from this run's medians:")
	trs := r.evalTargets()
	width := 0
	for _, t := range trs {
		width = max(width, utf8.RuneCountInString(t.What))
	}
	for _, t := range trs {
		v := "—"
		if t.Value != nil {
			v = fmtNum(*t.Value)
		}
		fmt.Fprintf(w, "  %s  %-7s %7s  %s\n", pad(t.What, width), t.Bound, v, t.Status)
	}
	if len(r.leftovers) > 0 {
		fmt.Fprintf(w, "\nleft behind by a run, now removed: %s\n", strings.Join(r.leftovers, " "))
	}
	fmt.Fprintf(w, "\ntotal time: %.1f s\n", r.total.Seconds())
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
		"C in the direct-link and mailbox rows: 64 bytes in shared memory handed over with process-shared semaphores, the mechanism ipcscript's mailboxes and links are built on. Python: multiprocessing.Pipe (link), multiprocessing.Queue (mailbox, throughput), fork start method.",
		"Go API: the ipc package called from Go, no Lua, between this bench binary's re-executed workers that inherit every object through ExtraFiles as the runtime's children do: direct link = an ipc.Queue inbox per process (per-sender capacity), mailbox = ipc.Queue, pipe = blocking read/write on the inherited *os.File (as the runtime's pipes), unix socket = ipc.Listen/ipc.Dial streams, mqueue = ipc.Mqueue, semaphore = ipc.Semaphore + ipc.Shm; bodies are the 64 raw bytes (Lua's carry MessagePack).",
		"throughput: C is a shared-memory ring with semaphores (\"unbounded\": room for every message); time from releasing every worker until every consumer has taken its last message.",
		"shared-memory rates: the counts differ per implementation (see --json, \"ops\") so that each run lasts long enough; Python's atomic add is a RawValue under a Lock; C's mutex is process-shared and robust.",
		"launch: the ipcscript cells are one measurement shown against both peers; Go API: the bench binary re-executed with an inbox each (an ipc.Queue it maps), as the runtime hands its children theirs; bare re-exec: the ipcscript binary started with IPCSCRIPT_BARE_EXIT=1, which exits at the top of main.",
		"memory: the harness reads VmHWM from /proc/PID/status of the run's processes every 5 ms while the workers sleep; \"1 idle process\" is that worker's peak, \"Σ over the run\" the sum of the peaks of every process of the run (parent and helpers included). Python workers use the spawn start method.",
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
			cell := jsonCell{Command: append([]string{m.cmd.prog}, m.cmd.args...), Why: m.why, Runs: m.runs}
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
