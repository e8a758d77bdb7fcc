package main

// What tracing costs to write and to open (issue 10), the Go side of the
// trace rows:
//
//	tracejsonl N   write a trace of N events as .jsonl; figure: seconds
//	tracehtml N [PAGE]
//	               write it as .html and open it in headless Chromium;
//	               figure: seconds from the navigation's start to the
//	               page's first drawing (the page sets data-ready then).
//	               With PAGE, the .html is written there by the first run
//	               and opened from there by the later ones (the harness
//	               passes a file in its temporary directory): making and
//	               writing 1M events took ~1.3 s a run, not measured.
//
// The events are made here, as a run of 3 processes exchanging messages
// would record them (a send and its receive, marks), so the .html has an
// arrow per message.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ipcscript/ipcscript/trace"
)

func init() {
	registerGoCase("tracejsonl", traceJSONLGo)
	registerGoCase("tracehtml", traceHTMLGo)
}

// syntheticTrace makes n events of 3 processes: sends, their receives
// (each a short blocked interval), and marks. It is not measured, and with
// the collector on, 3/4 of its CPU went to collections of the growing
// heap that free nothing (scanObject, bulkBarrierPreWrite: 1M events, 318
// MB): it runs with the collector off.
func syntheticTrace(n int) *trace.Trace {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	tr := &trace.Trace{Version: trace.Version, Script: "synthetic.lua",
		Procs:   []trace.Proc{{Name: "producer"}, {Name: "worker"}, {Name: "printer"}},
		Objects: []trace.Object{{Kind: "mailbox", Name: "jobs", Decl: "synthetic.lua:3"}}}
	tr.Events = make([]trace.Event, 0, n)
	vc := [3]trace.VC{make(trace.VC, 3), make(trace.VC, 3), make(trace.VC, 3)}
	now := int64(1_000_000)
	for len(tr.Events) < n {
		now += 1500
		s, r := len(tr.Events)%3, (len(tr.Events)+1)%3
		vc[s][s]++
		send := trace.Event{P: s, Proc: tr.Procs[s].Name, Seq: vc[s][s], Op: trace.OpSend, Kind: "mailbox", Object: "jobs", Decl: "synthetic.lua:3",
			Where: "synthetic.lua:10", Time: now, Msg: &trace.MsgID{Src: s, Seq: vc[s][s]}, Type: "job", Len: 64, VC: vc[s].Clone()}
		tr.Events = append(tr.Events, send)
		if len(tr.Events) == n {
			break
		}
		vc[r] = vc[r].Merge(vc[s])
		vc[r][r]++
		tr.Events = append(tr.Events, trace.Event{P: r, Proc: tr.Procs[r].Name, Seq: vc[r][r], Op: trace.OpReceive, Kind: "mailbox", Object: "jobs",
			Decl: "synthetic.lua:3", Where: "synthetic.lua:20", Time: now - 700, End: now + 900, Msg: send.Msg, Type: "job", Len: 64,
			Cause: &trace.Ref{P: s, Seq: send.Seq}, Peer: send.Proc, VC: vc[r].Clone()})
		if len(tr.Events)%7 == 0 && len(tr.Events) < n {
			vc[r][r]++
			tr.Events = append(tr.Events, trace.Event{P: r, Proc: tr.Procs[r].Name, Seq: vc[r][r], Op: trace.OpMark, Label: "step",
				Where: "synthetic.lua:21", Time: now + 1000, VC: vc[r].Clone()})
		}
	}
	trace.Sort(tr.Events)
	return tr
}

func traceJSONLGo(args []string) (figures, error) {
	n, err := positive(args, 0, "N")
	if err != nil {
		return nil, err
	}
	tr := syntheticTrace(n)
	dir, err := os.MkdirTemp("", "bench-trace-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// The write starts from a collected heap, whatever state the making
	// of the trace left the collector in.
	runtime.GC()
	start := time.Now()
	if err := trace.WriteFile(filepath.Join(dir, "run.jsonl"), tr, trace.Options{}); err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	return figures{"secs": secs, "ops": n, "ns_per_op": secs * 1e9 / float64(n), "ok": true}, nil
}

func traceHTMLGo(args []string) (figures, error) {
	n, err := positive(args, 0, "N")
	if err != nil {
		return nil, err
	}
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		return figures{"secs": nil, "ok": true, "why": "no Chromium on PATH"}, nil // a cell shown as —, not a failure
	}
	dir, err := os.MkdirTemp("", "bench-trace-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	page := filepath.Join(dir, "run.html")
	if len(args) > 1 {
		page = args[1]
	}
	if _, err := os.Stat(page); err != nil {
		// Written under another name first: a run cut short leaves no
		// half-written page for the next one.
		part := filepath.Join(filepath.Dir(page), "part-"+filepath.Base(page))
		if err := trace.WriteFile(part, syntheticTrace(n), trace.Options{}); err != nil {
			return nil, err
		}
		if err := os.Rename(part, page); err != nil {
			return nil, err
		}
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(browser), chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.Env("TMPDIR="+dir), chromedp.WindowSize(1200, 500))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelT()
	if err := chromedp.Do(ctx); err != nil { // the browser is up: not timed
		return nil, err
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page)); err != nil {
		return nil, err
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.documentElement.dataset.ready === "1"`, chromedp.WithPollingTimeout(time.Minute))); err != nil {
		return nil, err
	}
	// performance.now() counts from the navigation's start; the page
	// records it when its first drawing is done.
	ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`Number(document.documentElement.dataset.paintMs)`))
	if err != nil {
		return nil, err
	}
	if ms <= 0 {
		return nil, errors.New("the page did not say when it drew")
	}
	return figures{"secs": ms / 1000, "ops": n, "ok": true}, nil
}
