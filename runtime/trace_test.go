package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ipcscript/ipcscript/runtime"
	"github.com/ipcscript/ipcscript/trace"
)

func runTraced(t *testing.T, src string) *runtime.Report {
	t.Helper()
	var out bytes.Buffer
	rep, err := runtime.RunString(context.Background(), "t.lua", src, runtime.Options{
		Stdout: &out, Stderr: &out, Trace: runtime.TraceOptions{Record: true}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Trace == nil {
		t.Fatalf("no trace on the report; output:\n%s", out.String())
	}
	return rep
}

func ops(tr *trace.Trace, proc string) []string {
	var s []string
	for _, e := range tr.Events {
		if e.Proc == proc {
			s = append(s, e.Op+":"+e.Label)
		}
	}
	return s
}

// Marks and spans are recorded in order, each process's clock counts its
// own events, and the supervisor's spawn and exit frame each lane.
func TestTraceMarksAndSpans(t *testing.T) {
	rep := runTraced(t, `
local ipc = require("ipc")
ipc.process("a", function()
  ipc.mark("one", {n = 1})
  local r = ipc.span("inside", function(x) ipc.mark("two") return x * 2 end, 21)
  ipc.expect(r == 42, "span returns fn's results")
end)
ipc.process("b", function() ipc.mark("alone") end)
`)
	if !rep.OK {
		t.Fatalf("run failed: %s", rep.Summary())
	}
	got := strings.Join(ops(rep.Trace, "a"), " ")
	want := "spawn: start: mark:one mark:two span:inside exit:"
	if got != want {
		t.Errorf("a's events: %s\nwant %s", got, want)
	}
	for _, e := range rep.Trace.Events {
		if e.VC.Get(e.P) != e.Seq {
			t.Errorf("%s: clock %v does not count the process's events", e.Describe(), e.VC)
		}
		if e.Op == trace.OpSpan {
			if e.BeginVC.Get(e.P) != e.Seq-2 || e.End <= e.Time {
				t.Errorf("span %s: begin clock %v, want its process's component at %d", e.Describe(), e.BeginVC, e.Seq-2)
			}
			if r, _ := json.Marshal(e.Fields["results"]); string(r) != "[42]" {
				t.Errorf("span results %s, want [42]", r)
			}
		}
	}
	if n := len(rep.Trace.Edges()); n != 0 {
		t.Errorf("%d causal edges between processes that never met", n)
	}
}

// A process killed by SIGKILL leaves what it recorded up to its death, and
// its exit says how it ended.
func TestTraceSurvivesSIGKILL(t *testing.T) {
	rep := runTraced(t, `
local ipc = require("ipc")
ipc.process("victim", function(self)
  for i = 1, 5 do ipc.mark("before " .. i) end
  os.execute("kill -KILL " .. self.pid)
  ipc.sleep(10)
  ipc.mark("never")
end)
`)
	var marks []string
	var exit *trace.Event
	for i, e := range rep.Trace.Events {
		switch e.Op {
		case trace.OpMark:
			marks = append(marks, e.Label)
		case trace.OpExit:
			exit = &rep.Trace.Events[i]
		}
	}
	if strings.Join(marks, ",") != "before 1,before 2,before 3,before 4,before 5" {
		t.Errorf("marks of the killed process: %q", marks)
	}
	if exit == nil || exit.Fields["signal"] != "SIGKILL" {
		t.Fatalf("exit event %+v, want one that says SIGKILL", exit)
	}
}

// A deadlock is an event on the lanes of the processes stopped.
func TestTraceDeadlock(t *testing.T) {
	rep := runTraced(t, `
local ipc = require("ipc")
ipc.process("a", function() ipc.receive() end)
ipc.process("b", function() ipc.receive() end)
ipc.run{expect = "deadlock"}
`)
	if rep.Deadlock == "" {
		t.Fatalf("no deadlock reported: %s", rep.Summary())
	}
	var dl, stops int
	for _, e := range rep.Trace.Events {
		switch e.Op {
		case trace.OpDeadlock:
			dl++
		case trace.OpStop:
			if e.Outcome == "deadlock" {
				stops++
			}
		}
	}
	if dl != 1 || stops != 2 {
		t.Errorf("%d deadlock events and %d stops, want 1 and 2", dl, stops)
	}
}

// For random scripts of N processes exchanging messages, the
// happens-before relation the vector clocks give is exactly the one
// computed from program order and the send/receive pairs (transitively).
func TestTraceClocksAreHappensBefore(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 10))
	for round := 0; round < 4; round++ {
		n := 2 + rng.IntN(3)
		var body [8]strings.Builder
		for k := 0; k < 6+rng.IntN(10); k++ {
			s, r := rng.IntN(n), rng.IntN(n)
			if s == r {
				fmt.Fprintf(&body[s], "  ipc.mark(%q)\n", fmt.Sprint("m", k))
				continue
			}
			// sends never block (unbounded links); each process does its
			// part in this one global order, so every receive is matched
			fmt.Fprintf(&body[s], "  ipc.send(\"p%d\", %d)\n", r, k)
			fmt.Fprintf(&body[r], "  assert(ipc.receive({from = \"p%d\"}).body == %d)\n", s, k)
		}
		var src strings.Builder
		src.WriteString("local ipc = require(\"ipc\")\n")
		for p := 0; p < n; p++ {
			fmt.Fprintf(&src, "ipc.process(\"p%d\", function()\n%send)\n", p, body[p].String())
		}
		rep := runTraced(t, src.String())
		if !rep.OK {
			t.Fatalf("script failed: %s\n%s", rep.Summary(), src.String())
		}
		checkHappensBefore(t, rep.Trace, src.String())
	}
}

func checkHappensBefore(t *testing.T, tr *trace.Trace, src string) {
	t.Helper()
	ev := tr.Events
	idx := map[trace.Ref]int{}
	for i := range ev {
		idx[ev[i].Ref()] = i
	}
	n := len(ev)
	hb := make([][]bool, n)
	for i := range hb {
		hb[i] = make([]bool, n)
	}
	sends := map[trace.MsgID]int{}
	for i := range ev {
		if ev[i].Op == trace.OpSend {
			sends[*ev[i].Msg] = i
		}
	}
	for i := range ev {
		e := &ev[i]
		if prev, ok := idx[trace.Ref{P: e.P, Seq: e.Seq - 1}]; ok {
			hb[prev][i] = true
		}
		if e.Op == trace.OpReceive {
			s, ok := sends[*e.Msg]
			if !ok {
				t.Fatalf("%s: no send of message %v", e.Describe(), *e.Msg)
			}
			hb[s][i] = true
		}
	}
	for k := 0; k < n; k++ { // transitive closure
		for i := 0; i < n; i++ {
			if !hb[i][k] {
				continue
			}
			for j := 0; j < n; j++ {
				if hb[k][j] {
					hb[i][j] = true
				}
			}
		}
	}
	for i := range ev {
		for j := range ev {
			if got := trace.HappensBefore(&ev[i], &ev[j]); got != hb[i][j] {
				t.Fatalf("HappensBefore(%s, %s) = %v, want %v from program order and messages\nscript:\n%s",
					ev[i].Describe(), ev[j].Describe(), got, hb[i][j], src)
			}
		}
	}
}

// Options.Trace.W with a format: the view goes to the writer.
func TestTraceToWriter(t *testing.T) {
	var out, view bytes.Buffer
	rep, err := runtime.RunString(context.Background(), "w.lua", `
local ipc = require("ipc")
local box = ipc.mailbox("box")
ipc.process("a", function() box:send("hi") end)
ipc.process("b", function() box:receive() end)
`, runtime.Options{Stdout: &out, Stderr: &out, Trace: runtime.TraceOptions{W: &view, Format: ".mmd"}})
	if err != nil || !rep.OK {
		t.Fatalf("run: %v %s\n%s", err, rep.Summary(), out.String())
	}
	if got := view.String(); !strings.HasPrefix(got, "sequenceDiagram\n") || strings.Count(got, "P0-)P1: box") != 1 {
		t.Errorf("the .mmd written to the writer:\n%s", got)
	}
}
