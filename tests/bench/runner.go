package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// measurement is every run of one implementation of one command. Rows
// whose cells have the same implementation, command and CPU placement share
// one measurement.
type measurement struct {
	im       impl
	cmd      *command
	why      string // set when there is no figure by design: shown as —
	err      error  // the first failure; no more runs after it
	runs     []figures
	attempts int
	secs     float64 // wall time of its runs
}

// values returns the row's figure from every run, in the row's unit.
func (m *measurement) values(mt metric) []float64 {
	var vs []float64
	for _, f := range m.runs {
		if v, ok := f[mt.field].(float64); ok {
			vs = append(vs, v*mt.scale)
		}
	}
	return vs
}

type rowResult struct {
	c     benchCase
	cells [numImpls]*measurement // nil: no such mechanism
	secs  float64                // wall time spent on the row
}

type results struct {
	mach      machine
	repeats   int
	quick     bool
	rows      []rowResult
	total     time.Duration
	leftovers []string
}

// failed says whether any cell failed (a missing mechanism, an unwired Go
// case or an unbuilt ipcscript is not a failure).
func (r *results) failed() bool {
	for _, row := range r.rows {
		for _, m := range row.cells {
			if m != nil && m.err != nil {
				return true
			}
		}
	}
	return len(r.leftovers) > 0
}

func (b *bench) runAll(ctx context.Context, cases []benchCase) *results {
	res := &results{mach: b.mach, repeats: b.o.repeats, quick: b.o.quick}
	shared := map[string]*measurement{}
	rows := make([]rowResult, len(cases))
	for i, c := range cases {
		rows[i] = rowResult{c: c}
		for im := range numImpls {
			cmd := c.cmds[im]
			if cmd == nil {
				continue
			}
			key := fmt.Sprintf("%s %q %s %q %v %v", implKeys[im], cmd.flags, cmd.prog, cmd.args, c.cpus, c.memory)
			m := shared[key]
			if m == nil {
				m = &measurement{im: im, cmd: cmd}
				if !b.enabled[im] {
					m.why = "not selected"
				}
				shared[key] = m
			}
			rows[i].cells[im] = m
		}
	}
	done := 0
	for _, unit := range interleaveUnits(cases) {
		if ctx.Err() != nil {
			break
		}
		// The rows of a unit take turns repeat by repeat, as the cells of
		// a row do: a target across rows pairs runs taken moments apart.
		repeats := 0
		for _, i := range unit {
			repeats = max(repeats, b.rowRepeats(rows[i].c))
		}
		for r := 0; r < repeats && ctx.Err() == nil; r++ {
			var cells []*cellRun
			for _, i := range unit {
				if r >= b.rowRepeats(rows[i].c) {
					continue
				}
				for _, im := range runOrder {
					m := rows[i].cells[im]
					if m == nil || m.why != "" || m.err != nil || m.attempts > r {
						continue
					}
					m.attempts++
					cells = append(cells, &cellRun{c: rows[i].c, m: m, row: &rows[i]})
				}
			}
			b.measure(ctx, cells)
		}
		for _, i := range unit {
			done++
			progress("[%2d/%d] %-16s %s  (%.1f s)", done, len(cases), rows[i].c.id, summaryLine(rows[i]), rows[i].secs)
		}
	}
	for i := range rows {
		if rows[i].secs > 0 || ctx.Err() == nil {
			res.rows = append(res.rows, rows[i])
		}
	}
	res.leftovers = removeLeftovers()
	res.total = time.Since(b.start)
	res.mach.LoadEnd = loadAverage()
	return res
}

// rowRepeats is how many runs each cell of row c takes.
func (b *bench) rowRepeats(c benchCase) int {
	repeats := b.o.repeats
	if !b.o.repeatsSet && !targetRows[c.id] {
		repeats = min(repeats, 3) // no target reads it: median and worst of 3
	}
	if c.memory {
		repeats = min(repeats, 3)
	}
	if c.maxRepeats > 0 {
		repeats = min(repeats, c.maxRepeats)
	}
	return repeats
}

// interleaveUnits groups the indexes of cases into units run together:
// the cases with the same interleave key (in the order listed), at the
// place of the first of them; every other case alone.
func interleaveUnits(cases []benchCase) [][]int {
	var units [][]int
	at := map[string]int{}
	for i, c := range cases {
		if c.interleave == "" {
			units = append(units, []int{i})
			continue
		}
		if u, ok := at[c.interleave]; ok {
			units[u] = append(units[u], i)
			continue
		}
		at[c.interleave] = len(units)
		units = append(units, []int{i})
	}
	return units
}

// cellRun is one run of one cell in the making.
type cellRun struct {
	c      benchCase
	m      *measurement
	row    *rowResult
	argv   []string
	env    []string
	f      figures // the runs so far, merged (mergeRounds)
	rounds int
	gather bool // a target reads it and its row has minSecs
	done   bool
}

// measure does one run of each of cells, in turns. A cell that a target
// reads, of a row with minSecs, runs its command again, after the others
// have run theirs once more, until its measured seconds reach minSecs in
// at least minRounds runs: so the cells a target divides one by the other
// stay as close in time as single runs were, and a slow second of this
// VM (its speed changes from second to second) falls on several cells,
// not on one run of one cell.
func (b *bench) measure(ctx context.Context, cells []*cellRun) {
	for _, cr := range cells {
		var why string
		if cr.argv, cr.env, why = b.argv(cr.m.im, cr.m.cmd); why != "" {
			cr.m.why = why
		}
		cr.gather = cr.c.minSecs > 0 && targetCells[cellKey(cr.c.id, cr.m.im)]
	}
	for pending := true; pending && ctx.Err() == nil; {
		pending = false
		for _, cr := range cells {
			if cr.m.why != "" || cr.m.err != nil || cr.done {
				continue
			}
			b.runOnce(ctx, cr)
			secs, _ := cr.f["secs"].(float64)
			enough := secs >= cr.c.minSecs && cr.rounds >= minRounds || secs >= 3*cr.c.minSecs
			if cr.f == nil || !cr.gather || enough || cr.rounds >= maxRounds {
				if cr.f != nil {
					cr.m.runs = append(cr.m.runs, cr.f)
				}
				cr.done = true
				continue
			}
			pending = true
		}
	}
}

// runOnce runs cr's command once and merges its figures into cr.f; on a
// failure or a missing figure it sets cr.m.err or cr.m.why and leaves
// cr.f nil.
func (b *bench) runOnce(ctx context.Context, cr *cellRun) {
	c, m := cr.c, cr.m
	t0 := time.Now()
	f, err := run{
		argv: cr.argv, env: cr.env, dir: b.work, cpus: c.cpus,
		sampleRSS: c.memory, needPids: c.metric == workerRSS, timeout: b.o.timeout,
	}.start(ctx)
	took := time.Since(t0).Seconds()
	m.secs += took
	cr.row.secs += took
	if b.o.verbose {
		progress("  %s %s: %v %v", implKeys[m.im], strings.Join(cr.argv, " "), f, err)
	}
	prev := cr.f
	cr.f = nil
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		m.err = err
		return
	}
	v, present := f[c.metric.field]
	switch {
	case !present:
		m.err = fmt.Errorf("%s: no %q in %v", strings.Join(cr.argv, " "), c.metric.field, f)
	case v == nil:
		m.why, _ = f["why"].(string)
		if m.why == "" {
			m.why = "no such mechanism"
		}
	default:
		if _, ok := v.(float64); !ok {
			m.err = fmt.Errorf("%s: %q is not a number in %v", strings.Join(cr.argv, " "), c.metric.field, f)
			return
		}
		cr.rounds++
		if prev != nil {
			f = mergeRounds(prev, f, c.metric.field)
		}
		cr.f = f
	}
}

// A run of a cell with minSecs takes at least minRounds runs of its
// command (unless they measured 3 × minSecs: a slow command), so that a
// slow second of the machine is one of several in every cell, and at
// most maxRounds.
const minRounds, maxRounds = 3, 8

// mergeRounds is the figures of two runs of one command as one run: their
// seconds and operations added up, field (a per-operation cost or a rate)
// over all of them, and rounds counting the runs. (A run that was not ok
// failed in start.)
func mergeRounds(a, b figures, field string) figures {
	num := func(f figures, k string) float64 { v, _ := f[k].(float64); return v }
	out := figures{}
	for k, v := range a {
		out[k] = v
	}
	for _, k := range []string{"secs", "ops", "bytes", "wall_secs"} {
		if _, ok := a[k].(float64); ok {
			out[k] = num(a, k) + num(b, k)
		}
	}
	out["after_exit_secs"] = max(num(a, "after_exit_secs"), num(b, "after_exit_secs"))
	// The figure over every operation of both: a cost per operation is
	// the mean over the operations, a rate (operations, messages or bytes
	// a second) the mean over the measured seconds, as every program
	// computes its own from its "secs" and its count.
	if field == "ns_per_op" {
		if oa, ob := num(a, "ops"), num(b, "ops"); oa+ob > 0 {
			out[field] = (num(a, field)*oa + num(b, field)*ob) / (oa + ob)
		}
	} else if sa, sb := num(a, "secs"), num(b, "secs"); sa+sb > 0 {
		out[field] = (num(a, field)*sa + num(b, field)*sb) / (sa + sb)
	}
	rounds, _ := a["rounds"].(float64)
	out["rounds"] = max(rounds, 1) + 1
	return out
}

func summaryLine(row rowResult) string {
	var parts []string
	for _, im := range runOrder {
		parts = append(parts, implTitles[im]+" "+cellText(row.cells[im], row.c.metric))
	}
	return strings.Join(parts, "  ") + "  " + row.c.metric.unit
}

// removeLeftovers removes what a run left in the kernel's name spaces under
// the benchmark's own prefix, and returns the names it found.
func removeLeftovers() []string {
	var found []string
	for _, dir := range []string{"/dev/shm", "/dev/mqueue"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), "ipcscript-bench") {
				p := filepath.Join(dir, e.Name())
				os.Remove(p)
				found = append(found, p)
			}
		}
	}
	return found
}
