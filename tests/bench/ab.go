package main

// A/B mode (--ab): the Lua cells of the selected cases, run in turns with
// two setups, repeat by repeat (which goes first alternates), so that a
// drift of a loaded machine hits both alike; it prints the per-repeat
// ratios A ÷ B in the row's unit, their median and worst.
//
//	--ab trace   A: this tree's binary with --trace, B: the same without
//	             (what tracing on costs; issue 10: mailbox ≥ 0.5)
//	--ab REV     A: this tree's binary, B: one built from git revision
//	             REV of the same repository (git archive; e.g. HEAD~1:
//	             what a change costs with tracing off; issue 10: ≤ 2%)
//	--ab PATH    B: the ipcscript binary at PATH
//
//	go run ./tests/bench --ab HEAD~1 --cases tput-cap64,rtt-mailbox-1cpu --repeats 9

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// abSetup builds or finds B's binary; trace is true for --ab trace.
func (b *bench) abSetup(ctx context.Context, what string) (base string, trace bool, err error) {
	if what == "trace" {
		return b.ipc, true, nil
	}
	if st, err := os.Stat(what); err == nil && !st.IsDir() {
		return what, false, nil
	}
	dir := filepath.Join(b.tmp, "ab-src")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", false, err
	}
	progress("building ./cmd/ipcscript at %s", what)
	archive := exec.CommandContext(ctx, "git", "-C", b.root, "archive", "--format=tar", what)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", false, err
	}
	untar.Stdin = pipe
	var msg strings.Builder
	archive.Stderr = &msg
	if err := archive.Start(); err != nil {
		return "", false, err
	}
	uerr := untar.Run()
	if err := archive.Wait(); err != nil {
		return "", false, fmt.Errorf("git archive %s: %v: %s", what, err, strings.TrimSpace(msg.String()))
	}
	if uerr != nil {
		return "", false, fmt.Errorf("tar: %v", uerr)
	}
	base = filepath.Join(b.tmp, "ipcscript-base")
	return base, false, buildIpcscript(ctx, dir, base)
}

// runAB runs every selected case's Lua cell with setups A and B in turns
// and writes the ratios to w. It returns the exit status.
func (b *bench) runAB(ctx context.Context, cases []benchCase, w io.Writer) int {
	if b.ipc == "" {
		fmt.Fprintln(os.Stderr, "bench: --ab needs the ipcscript binary:", b.notBuilt)
		return 1
	}
	base, trace, err := b.abSetup(ctx, b.o.ab)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: --ab:", err)
		return 1
	}
	aName, bName := "this tree", b.o.ab
	if trace {
		aName, bName = "--trace", "without"
	}
	fmt.Fprintf(w, "A/B: A = %s, B = %s; %d repeats each, in turns; load average %s at the start\n", aName, bName, b.o.repeats, loadAverage())
	status := 0
	for _, c := range cases {
		cmd := c.cmds[implLua]
		if cmd == nil || c.memory || ctx.Err() != nil || trace && strings.Contains(strings.Join(cmd.flags, " "), "--trace") {
			continue
		}
		a := &measurement{im: implLua, cmd: cmd}
		bm := &measurement{im: implLua, cmd: cmd}
		if trace {
			t := *cmd
			t.flags = append(append([]string(nil), cmd.flags...), "--trace", "@tmp/ab-"+cmd.prog+".jsonl")
			a.cmd = &t
		}
		var row rowResult
		runA := func() { b.measure(ctx, []*cellRun{{c: c, m: a, row: &row}}) }
		runB := func() {
			saved := b.ipc
			b.ipc = base
			b.measure(ctx, []*cellRun{{c: c, m: bm, row: &row}})
			b.ipc = saved
		}
		for r := 0; r < b.o.repeats && ctx.Err() == nil && a.err == nil && bm.err == nil; r++ {
			if r%2 == 0 {
				runA()
				runB()
			} else {
				runB()
				runA()
			}
		}
		if a.err != nil || bm.err != nil || a.why != "" || bm.why != "" {
			fmt.Fprintf(w, "%-22s failed: A %v %s, B %v %s\n", c.id, a.err, a.why, bm.err, bm.why)
			status = 1
			continue
		}
		av, bv := a.values(c.metric), bm.values(c.metric)
		var ratios []float64
		for i := range min(len(av), len(bv)) {
			ratios = append(ratios, av[i]/bv[i])
		}
		if len(ratios) == 0 {
			continue
		}
		s := summarise(ratios)
		worst := s.Max // lower is better: the largest ratio
		if c.metric.higher {
			worst = s.Min
		}
		parts := make([]string, len(ratios))
		for i, x := range ratios {
			parts[i] = fmt.Sprintf("%.3f (%.4g/%.4g)", x, av[i], bv[i])
		}
		fmt.Fprintf(w, "%-22s %s  A ÷ B median %.3f, worst %.3f  (A median %.4g, B median %.4g; repeats: ratio (A/B) %s)\n",
			c.id, c.metric.unit, s.Median, worst, summarise(av).Median, summarise(bv).Median, strings.Join(parts, " "))
	}
	fmt.Fprintf(w, "load average %s at the end\n", loadAverage())
	return status
}
