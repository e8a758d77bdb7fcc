package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/ipcscript/ipcscript/runtime"
)

// findBrowser returns a Chromium or Chrome executable: $IPCSCRIPT_CHROME,
// else the first of the usual names on PATH.
func findBrowser() string {
	if p := os.Getenv("IPCSCRIPT_CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browserContext starts a headless browser with a fresh profile and no
// background networking. It skips the test, saying why, when there is no
// browser, unless IPCSCRIPT_REQUIRE_BROWSER is set (.ci/run sets it): then
// a missing browser fails.
func browserContext(t *testing.T) (context.Context, func()) {
	t.Helper()
	path := findBrowser()
	if path == "" {
		msg := "no Chromium or Chrome on PATH (install Debian's chromium package, or set IPCSCRIPT_CHROME): the .html trace view was not checked in a real browser"
		if os.Getenv("IPCSCRIPT_REQUIRE_BROWSER") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), // nothing of the browser's in /dev/shm
		// The profile, and what Chromium makes in $TMPDIR
		// (org.chromium.Chromium.*), go in directories the test removes.
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Env("TMPDIR=" + t.TempDir()),
		chromedp.WindowSize(1200, 420),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	return ctx, func() { cancelTimeout(); cancelCtx(); cancelAlloc() }
}

// The .html view of a 3-process run, opened in headless Chromium: one lane
// per process and one arrow per causal edge in the DOM, nothing fetched
// from the network, and a screenshot (into $IPCSCRIPT_SCREENSHOT when set:
// docs/trace-view.png is made this way).
func TestTraceHTMLInBrowser(t *testing.T) {
	t.Parallel()
	ctx, cancel := browserContext(t)
	defer cancel()

	dir := t.TempDir()
	page := filepath.Join(dir, "run.html")
	var out bytes.Buffer
	wd, _ := os.Getwd()
	rep, err := runtime.RunFile(context.Background(), filepath.Join(wd, "..", "scripts", "traced.lua"), runtime.Options{
		Stdout: &out, Stderr: &out, Trace: runtime.TraceOptions{Path: page, Record: true}})
	if err != nil || !rep.OK {
		t.Fatalf("run: %v %s\n%s", err, rep.Summary(), out.String())
	}
	wantArrows := len(rep.Trace.Edges())
	if wantArrows < 8 { // 3 messages, 3 pipe reads, a post, 2+ unlocks
		t.Fatalf("the run has %d causal edges, want at least 8", wantArrows)
	}

	// Open the tab first, so the listener sees every request of the page.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var fetched []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if r, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			fetched = append(fetched, r.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page), chromedp.WaitVisible(chromedp.ID("cv"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.documentElement.dataset.ready === "1"`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the page never finished drawing: %v", err)
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	lanes := eval(`String(document.querySelectorAll("#lanes .lane").length)`)
	laneNames := eval(`Array.from(document.querySelectorAll("#lanes .lane")).map(e => e.dataset.proc).join(",")`)
	arrows := eval(`document.documentElement.dataset.arrows`)
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	// the filter: hide the printer, and the arrows to and from it go
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`input[data-proc="printer"]`))); err != nil {
		t.Fatal(err)
	}
	tip := eval(`document.documentElement.dataset.lanes + "/" + document.documentElement.dataset.arrows`)
	// the details come after the first drawing; then the object filter
	// works: only the mailbox's arrows (send -> receive) stay
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.documentElement.dataset.detail === "1"`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the page never read its details: %v", err)
	}
	var onJobs int
	for _, e := range rep.Trace.Edges() {
		a, b := rep.Trace.Events[e.From], rep.Trace.Events[e.To]
		if a.Object == "jobs" && b.Object == "jobs" && a.Proc != "printer" && b.Proc != "printer" {
			onJobs++
		}
	}
	jobs := eval(`(() => { const s = document.getElementById("objsel");
		const o = Array.from(s.options).find(o => o.textContent === "mailbox jobs");
		if (!o) return "no option";
		s.value = o.value; s.dispatchEvent(new Event("change"));
		return document.documentElement.dataset.arrows; })()`)
	if jobs != strconv.Itoa(onJobs) || onJobs == 0 {
		t.Errorf("arrows with only mailbox jobs (and no printer): %s, want %d", jobs, onJobs)
	}
	if lanes != "3" || laneNames != "producer,worker,printer" {
		t.Errorf("lanes in the DOM: %s (%s), want 3 (producer,worker,printer)", lanes, laneNames)
	}
	if arrows != strconv.Itoa(wantArrows) {
		t.Errorf("arrows drawn: %s, want %d (one per causal edge)", arrows, wantArrows)
	}
	var toPrinter int
	for _, e := range rep.Trace.Edges() {
		if rep.Trace.Events[e.From].Proc == "printer" || rep.Trace.Events[e.To].Proc == "printer" {
			toPrinter++
		}
	}
	if want := "2/" + strconv.Itoa(wantArrows-toPrinter); tip != want {
		t.Errorf("without the printer: lanes/arrows %s, want %s", tip, want)
	}
	mu.Lock()
	for _, u := range fetched {
		if !strings.HasPrefix(u, "file://") {
			t.Errorf("the page fetched %s: it must be self-contained", u)
		}
	}
	mu.Unlock()
	if len(shot) < 1000 {
		t.Errorf("screenshot of %d bytes", len(shot))
	}
	if p := os.Getenv("IPCSCRIPT_SCREENSHOT"); p != "" {
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Error(err)
		}
	}
}
