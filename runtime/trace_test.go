package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
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

// For random scripts of N processes exchanging messages (mailboxes,
// rendezvous, UDP datagrams) and meeting at a barrier, the happens-before
// relation the vector clocks give is exactly the one computed from
// program order, the send/receive pairs and the barrier's phases
// (transitively).
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
			// each process does its part in this one global order, so
			// every receive is matched: sends on unbounded links never
			// block, and a rendezvous (a mailbox of capacity 0 per pair)
			// meets its receive at the same step
			if rng.IntN(8) == 0 { // every process meets at the barrier
				for p := 0; p < n; p++ {
					body[p].WriteString("  b:wait()\n")
				}
				continue
			}
			if rng.IntN(4) == 0 { // a datagram, on the pair's own socket
				fmt.Fprintf(&body[s], "  u[%d][%d]:sendto(u[%d][%d].address, \"%d\")\n", s, r, s, r, k)
				fmt.Fprintf(&body[r], "  assert(u[%d][%d]:recvfrom() == \"%d\")\n", s, r, k)
				continue
			}
			if rng.IntN(3) == 0 {
				fmt.Fprintf(&body[s], "  rv[%d][%d]:send(%d)\n", s, r, k)
				fmt.Fprintf(&body[r], "  assert(rv[%d][%d]:receive().body == %d)\n", s, r, k)
				continue
			}
			fmt.Fprintf(&body[s], "  ipc.send(\"p%d\", %d)\n", r, k)
			fmt.Fprintf(&body[r], "  assert(ipc.receive({from = \"p%d\"}).body == %d)\n", s, k)
		}
		// every other round, the last process is an instance p0 spawns
		// (ipc.spawn) first thing: its events go through the board's
		// lanes for spawned processes. p0 then tells the others to go,
		// so none names it before it exists.
		spawned := round%2 == 1
		if spawned {
			var pre strings.Builder
			fmt.Fprintf(&pre, "  ipc.spawn(\"t\", nil, {name = \"p%d\"})\n", n-1)
			for p := 1; p < n-1; p++ {
				fmt.Fprintf(&pre, "  ipc.send(\"p%d\", \"go\")\n", p)
				body[p] = prepend(&body[p], "  assert(ipc.receive({from = \"p0\"}).body == \"go\")\n")
			}
			body[0] = prepend(&body[0], pre.String())
		}
		var src strings.Builder
		src.WriteString("local ipc = require(\"ipc\")\nlocal rv = {}\n")
		fmt.Fprintf(&src, "for s = 0, %d do rv[s] = {}; for r = 0, %d do rv[s][r] = ipc.mailbox(\"rv\" .. s .. \"_\" .. r, {capacity = 0}) end end\n", n-1, n-1)
		fmt.Fprintf(&src, "local u, b = {}, ipc.barrier(\"b\", %d)\n", n)
		fmt.Fprintf(&src, "for s = 0, %d do u[s] = {}; for r = 0, %d do u[s][r] = ipc.listen(\"udp\", \"127.0.0.1:0\") end end\n", n-1, n-1)
		for p := 0; p < n; p++ {
			name, opts := fmt.Sprint("p", p), ""
			if spawned && p == n-1 {
				name, opts = "t", "{spawn = true}, "
			}
			fmt.Fprintf(&src, "ipc.process(%q, %sfunction()\n%send)\n", name, opts, body[p].String())
		}
		rep := runTraced(t, src.String())
		if !rep.OK {
			t.Fatalf("script failed: %s\n%s", rep.Summary(), src.String())
		}
		if spawned && (rep.Trace.ProcIndex(fmt.Sprint("p", n-1)) != n-1 || rep.Trace.Uncarried != nil) {
			t.Fatalf("the spawned p%d: lanes %v, uncarried %+v", n-1, rep.Trace.Procs, rep.Trace.Uncarried)
		}
		checkHappensBefore(t, rep.Trace, src.String())
	}
}

// prepend returns s with text before it.
func prepend(b *strings.Builder, text string) strings.Builder {
	var out strings.Builder
	out.WriteString(text)
	out.WriteString(b.String())
	return out
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
	receives := map[trace.MsgID]int{}
	for i := range ev {
		switch ev[i].Op {
		case trace.OpSend:
			sends[*ev[i].Msg] = i
		case trace.OpReceive:
			receives[*ev[i].Msg] = i
		}
	}
	// a barrier's phase: every arrival happens before every wait it ended
	type phase struct {
		object string
		phase  any
	}
	arrivals := map[phase][]int{}
	for i := range ev {
		if ev[i].Op == trace.OpArrive {
			k := phase{ev[i].Object, ev[i].Fields["phase"]}
			arrivals[k] = append(arrivals[k], i)
		}
	}
	for i := range ev {
		e := &ev[i]
		if prev, ok := idx[trace.Ref{P: e.P, Seq: e.Seq - 1}]; ok {
			hb[prev][i] = true
		}
		if e.Op == trace.OpWait && e.Kind == "barrier" && e.Outcome == "" {
			for _, a := range arrivals[phase{e.Object, e.Fields["phase"]}] {
				hb[a][i] = true
			}
		}
		if e.Op == trace.OpSpawn && e.Cause != nil { // a spawned process's first event
			c, ok := idx[*e.Cause]
			if !ok || ev[c].Op != trace.OpSpawn || ev[c].Peer != e.Proc {
				t.Fatalf("%s: its cause %v is not a spawn naming it", e.Describe(), *e.Cause)
			}
			hb[c][i] = true
		}
		if e.Op == trace.OpReceive {
			s, ok := sends[*e.Msg]
			if !ok {
				t.Fatalf("%s: no send of message %v", e.Describe(), *e.Msg)
			}
			hb[s][i] = true
		}
		if e.Op == trace.OpRendezvous { // a rendezvous send returns after its receive
			r, ok := receives[*e.Msg]
			if !ok {
				t.Fatalf("%s: no receive of message %v", e.Describe(), *e.Msg)
			}
			hb[r][i] = true
		}
	}
	for m, s := range sends { // and says so: every rendezvous send that was taken
		if strings.HasPrefix(ev[s].Object, "rv") {
			found := false
			for i := range ev {
				if ev[i].Op == trace.OpRendezvous && *ev[i].Msg == m {
					found = true
				}
			}
			if !found {
				t.Fatalf("%s: no rendezvous event for it\nscript:\n%s", ev[s].Describe(), src)
			}
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

// A condition variable and a barrier carry clocks: the wait picks up the
// signal's, the mutex's unlock and lock around the wait carry theirs, and
// every party's next event knows every arrival at the barrier.
func TestTraceCondAndBarrier(t *testing.T) {
	rep := runTraced(t, `local ipc = require("ipc")
local m, c, b = ipc.mutex("m"), ipc.cond("c"), ipc.barrier("b", 3)
local ready, go = ipc.shm("ready", 8), ipc.semaphore("go", 0)
ipc.process("waiter", function()
  m:lock()
  go:post() -- the signaller locks only once the wait released m
  while ready:get("i64", 0) == 0 do c:wait(m) end
  m:unlock()
  b:wait()
  ipc.mark("past")
end)
ipc.process("signaller", function()
  go:wait()
  m:lock()
  ready:set("i64", 0, 1)
  c:signal()
  m:unlock()
  b:wait()
  ipc.mark("past")
end)
ipc.process("third", function() ipc.mark("before"); b:wait(); ipc.mark("past") end)
`)
	if !rep.OK {
		t.Fatalf("script failed: %s", rep.Summary())
	}
	ev := rep.Trace.Events
	by := map[trace.Ref]*trace.Event{}
	for i := range ev {
		by[ev[i].Ref()] = &ev[i]
	}
	find := func(proc, op, kind string) []*trace.Event {
		var out []*trace.Event
		for i := range ev {
			if ev[i].Proc == proc && ev[i].Op == op && (kind == "" || ev[i].Kind == kind) {
				out = append(out, &ev[i])
			}
		}
		return out
	}
	causeOf := func(e *trace.Event) *trace.Event {
		if e.Cause == nil {
			return nil
		}
		return by[*e.Cause]
	}
	waits := find("waiter", trace.OpWait, "cond")
	if len(waits) != 1 {
		t.Fatalf("waiter: %d cond waits, want 1: %v", len(waits), ops(rep.Trace, "waiter"))
	}
	if c := causeOf(waits[0]); c == nil || c.Proc != "signaller" || c.Op != trace.OpSignal {
		t.Errorf("the cond wait's cause is %v, want the signaller's signal", c)
	}
	// waiter: lock, post, unlock (in the wait), wait, lock (in the wait), unlock
	locks, unlocks := find("waiter", trace.OpLock, "mutex"), find("waiter", trace.OpUnlock, "mutex")
	if len(locks) != 2 || len(unlocks) != 2 {
		t.Fatalf("waiter: %d locks, %d unlocks, want 2 and 2: %v", len(locks), len(unlocks), ops(rep.Trace, "waiter"))
	}
	if c := causeOf(locks[1]); c == nil || c.Proc != "signaller" || c.Op != trace.OpUnlock {
		t.Errorf("the lock again after the wait has cause %v, want the signaller's unlock", c)
	}
	sl := find("signaller", trace.OpLock, "mutex")
	if len(sl) != 1 {
		t.Fatalf("signaller: %d locks", len(sl))
	}
	if c := causeOf(sl[0]); c == nil || c.Ref() != unlocks[0].Ref() {
		t.Errorf("the signaller's lock has cause %v, want the unlock inside the waiter's wait %v", c, unlocks[0].Describe())
	}
	var arrivals, past []*trace.Event
	for _, p := range []string{"waiter", "signaller", "third"} {
		arrivals = append(arrivals, find(p, trace.OpArrive, "barrier")...)
		past = append(past, find(p, trace.OpMark, "")...)
	}
	if len(arrivals) != 3 {
		t.Fatalf("%d arrivals at the barrier, want 3", len(arrivals))
	}
	n := 0
	for _, a := range arrivals {
		for _, p := range past {
			if p.Label != "past" {
				continue
			}
			n++
			if !trace.HappensBefore(a, p) {
				t.Errorf("%s does not happen before %s", a.Describe(), p.Describe())
			}
		}
	}
	if n != 9 {
		t.Errorf("%d arrival/past pairs, want 9", n)
	}
}

// An exec'd program records nothing, but the reads of its output name
// its spawn: its lane is joined to its reader's.
func TestTraceExecOutput(t *testing.T) {
	rep := runTraced(t, `local ipc = require("ipc")
local unsorted = ipc.pipe{from = "gen", to = "sort"}
local sorted = ipc.pipe{from = "sort", to = "show"}
ipc.process("gen", function() unsorted:write("b\n"); unsorted:write("a\n"); unsorted:write("c\n") end)
ipc.process("sort", {exec = {"sort"}, stdin = unsorted, stdout = sorted})
ipc.process("show", function() for l in sorted:lines() do ipc.mark(l) end end)
`)
	if !rep.OK {
		t.Fatalf("script failed: %s", rep.Summary())
	}
	var sortP = -1
	for i, p := range rep.Trace.Procs {
		if p.Name == "sort" {
			sortP = i
		}
	}
	reads, marks := 0, []string{}
	for _, e := range rep.Trace.Events {
		if e.Proc == "show" && e.Op == trace.OpMark {
			marks = append(marks, e.Label)
		}
		if e.Proc != "show" || e.Op != trace.OpRead || e.Len == 0 {
			continue
		}
		reads++
		if e.Cause == nil || e.Cause.P != sortP || e.Cause.Seq != 1 {
			t.Errorf("%s: cause %v, want sort's spawn (%d, 1)", e.Describe(), e.Cause, sortP)
		}
	}
	if reads != 3 || strings.Join(marks, "") != "abc" {
		t.Errorf("show read %d lines (%v), want a b c", reads, marks)
	}
	// sort read all of gen's writes before it ended: its exit is caused
	// by the last of them, and comes after every one
	var writes []*trace.Event
	var exit *trace.Event
	for i := range rep.Trace.Events {
		e := &rep.Trace.Events[i]
		switch {
		case e.Proc == "gen" && e.Op == trace.OpWrite:
			writes = append(writes, e)
		case e.Proc == "sort" && e.Op == trace.OpExit:
			exit = e
		}
	}
	if len(writes) != 3 || exit == nil {
		t.Fatalf("gen wrote %d times, sort's exit %v; want 3 writes and an exit", len(writes), exit)
	}
	if exit.Cause == nil || *exit.Cause != writes[2].Ref() {
		t.Errorf("sort's exit has cause %v, want gen's last write %v", exit.Cause, writes[2].Ref())
	}
	for _, w := range writes {
		if !trace.HappensBefore(w, exit) {
			t.Errorf("%s does not happen before %s", w.Describe(), exit.Describe())
		}
	}
}

// An exec'd program that ends without reading its stdin: its exit is
// caused by nothing written there.
func TestTraceExecUnreadInput(t *testing.T) {
	rep := runTraced(t, `local ipc = require("ipc")
local p = ipc.pipe{from = "gen", to = "quit"}
ipc.process("gen", function() p:write("never read\n") end)
ipc.process("quit", {exec = {"sh", "-c", "exec 3<&0; sleep 0.2"}, stdin = p})
`)
	for _, e := range rep.Trace.Events {
		if e.Proc == "quit" && e.Op == trace.OpExit && e.Cause != nil {
			t.Errorf("%s has cause %v: it read nothing", e.Describe(), *e.Cause)
		}
	}
}

// A reused barrier: each phase's waits know exactly that phase's
// arrivals. The k-th wait of every party is caused by an arrival of
// phase k and happens after every one of them, and no arrival of phase
// k+1 happens before it (a party that ends a phase runs on to the next
// arrival while the others are still waking).
func TestTraceBarrierPhases(t *testing.T) {
	const parties, phases = 3, 3
	rep := runTraced(t, `local ipc = require("ipc")
local b = ipc.barrier("b", 3)
for _, name in ipairs({"a", "b", "c"}) do
  ipc.process(name, function()
    for phase = 1, 3 do
      ipc.mark("phase " .. phase)
      b:wait()
    end
  end)
end
`)
	if !rep.OK {
		t.Fatalf("script failed: %s", rep.Summary())
	}
	ev := rep.Trace.Events
	by := map[trace.Ref]*trace.Event{}
	arrivals := make([][]*trace.Event, phases) // by phase
	waits := make([][]*trace.Event, phases)
	count := map[string][2]int{}
	for i := range ev {
		e := &ev[i]
		by[e.Ref()] = e
		if e.Kind != "barrier" {
			continue
		}
		c := count[e.Proc]
		switch e.Op {
		case trace.OpArrive:
			arrivals[c[0]] = append(arrivals[c[0]], e)
			c[0]++
		case trace.OpWait:
			waits[c[1]] = append(waits[c[1]], e)
			c[1]++
		}
		count[e.Proc] = c
	}
	for k := 0; k < phases; k++ {
		if len(arrivals[k]) != parties || len(waits[k]) != parties {
			t.Fatalf("phase %d: %d arrivals and %d waits, want %d each", k+1, len(arrivals[k]), len(waits[k]), parties)
		}
		for _, w := range waits[k] {
			c := by[*w.Cause]
			if w.Cause == nil || c == nil || c.Op != trace.OpArrive || c.Fields["phase"] != arrivals[k][0].Fields["phase"] {
				t.Errorf("phase %d: %s has cause %v, want an arrival of its phase", k+1, w.Describe(), w.Cause)
			}
			for _, a := range arrivals[k] {
				if !trace.HappensBefore(a, w) {
					t.Errorf("phase %d: %s does not happen before %s", k+1, a.Describe(), w.Describe())
				}
			}
			if k+1 < phases {
				for _, a := range arrivals[k+1] {
					if a.P != w.P && trace.HappensBefore(a, w) {
						t.Errorf("phase %d: %s of phase %d happens before %s", k+1, a.Describe(), k+2, w.Describe())
					}
				}
			}
		}
	}
	checkHappensBefore(t, rep.Trace, "barrier phases")
}

// UDP datagrams carry the sender's clock in a traced run, to processes of
// the run: a connected socket's write to the run's listener, the
// listener's reply to the address it came from, a sendto between two
// listeners of the run. Each receive is caused by its send and gets the
// payload as sent; a datagram to a program outside the run, and every
// datagram of an untraced run, is sent byte for byte as it was given.
func TestTraceUDPDatagrams(t *testing.T) {
	outside, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	src := fmt.Sprintf(`local ipc = require("ipc")
local srv, other = ipc.listen("udp", "127.0.0.1:0"), ipc.listen("udp", "127.0.0.1:0")
ipc.process("server", function()
  local d, from = srv:recvfrom()
  srv:sendto(from, "pong " .. d)
  local e = srv:recvfrom()
  print("server got " .. d .. " and " .. e .. " (" .. #e .. " bytes)")
end)
ipc.process("client", function()
  local c = ipc.connect("udp", srv.address)
  c:write("ping")
  print("client got " .. c:read())
  other:sendto(srv.address, "hello")
  other:sendto(%q, "outside")
end)
`, outside.LocalAddr().String())
	got := make(chan string, 2)
	go func() {
		b := make([]byte, 1<<16)
		for i := 0; i < 2; i++ {
			n, _, err := outside.ReadFrom(b)
			if err != nil {
				return
			}
			got <- string(b[:n])
		}
	}()
	var out bytes.Buffer
	rep, err := runtime.RunString(context.Background(), "t.lua", src, runtime.Options{Stdout: &out, Stderr: &out})
	if err != nil || !rep.OK {
		t.Fatalf("untraced run: %v %s\n%s", err, rep.Summary(), out.String())
	}
	rep = runTraced(t, src)
	if !rep.OK {
		t.Fatalf("traced run failed: %s", rep.Summary())
	}
	for i := 0; i < 2; i++ {
		select {
		case d := <-got:
			if d != "outside" {
				t.Errorf("the program outside the run got %q, want %q", d, "outside")
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the program outside the run got %d datagrams, want 2", i)
		}
	}
	ev := rep.Trace.Events
	by := map[trace.Ref]*trace.Event{}
	for i := range ev {
		by[ev[i].Ref()] = &ev[i]
	}
	var recv []string
	for i := range ev {
		e := &ev[i]
		if e.Op != trace.OpReceive {
			continue
		}
		c := (*trace.Event)(nil)
		if e.Cause != nil {
			c = by[*e.Cause]
		}
		if c == nil || c.Op != trace.OpSend || c.P == e.P || e.Msg == nil || *e.Msg != *c.Msg || e.Len != c.Len {
			t.Errorf("%s (%d bytes): cause %v, want the send of its datagram", e.Describe(), e.Len, c)
			continue
		}
		recv = append(recv, fmt.Sprintf("%s<-%s %d", e.Proc, c.Proc, e.Len))
	}
	if want := "server<-client 4 client<-server 9 server<-client 5"; strings.Join(recv, " ") != want {
		t.Errorf("receives %q, want %q", strings.Join(recv, " "), want)
	}
	sends := 0
	for i := range ev {
		if ev[i].Op == trace.OpSend {
			sends++
		}
	}
	if sends != 4 {
		t.Errorf("%d sends recorded, want 4", sends)
	}
	checkHappensBefore(t, rep.Trace, src)
}

// A datagram too long to carry the clock is sent as it is, traced: it
// arrives whole, and its receive has no cause.
func TestTraceUDPFullDatagram(t *testing.T) {
	rep := runTraced(t, `local ipc = require("ipc")
local srv = ipc.listen("udp", "127.0.0.1:0")
ipc.process("server", function()
  local d = srv:recvfrom()
  ipc.expect(#d == 65500 and d == string.rep("x", 65500), "the whole datagram, as sent: " .. #d .. " bytes")
end)
ipc.process("client", function() srv:sendto(srv.address, string.rep("x", 65500)) end)
`)
	if !rep.OK {
		t.Fatalf("script failed: %s", rep.Summary())
	}
	n := 0
	for _, e := range rep.Trace.Events {
		if e.Op == trace.OpReceive {
			n++
			if e.Cause != nil || e.Len != 65500 {
				t.Errorf("%s: cause %v, %d bytes; want no cause and 65500", e.Describe(), e.Cause, e.Len)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d receives, want 1", n)
	}
}

// A spawned instance's own events travel through the board as a declared
// process's do: it posts a semaphore, unlocks a mutex and writes a FIFO (a spawned process
// holds no pipe end unless given one),
// and the declared process's wait, lock and read (read back from the
// .jsonl) each know the instance's event they follow. Then, under
// --max-procs 2 (one declared, so one spawned lane), a second instance,
// spawned once the first ended, is beyond the board's lanes: the trace
// says so in its header and on its spawn event, and its post's edge is
// the one missing.
const spawnBoardScript = `local ipc = require("ipc")
local sem = ipc.semaphore("s", 0)
local mu = ipc.mutex("mu")
local f = ipc.fifo("f")
ipc.process("w", {spawn = true}, function(self)
  mu:lock()
  ipc.mark("in")
  sem:post()
  mu:unlock()
  if self.index == 1 then f:open("w"):write("x") end
end)
ipc.process("boss", function()
  local w = ipc.spawn("w")
  sem:wait()
  mu:lock()
  mu:unlock()
  assert(f:open("r"):read(1) == "x")
  ipc.wait(w)
  ipc.spawn("w")
  sem:wait()
end)
`

func TestTraceSpawnedThroughBoard(t *testing.T) {
	path := t.TempDir() + "/spawn.jsonl"
	var out bytes.Buffer
	rep, err := runtime.RunString(context.Background(), "t.lua", spawnBoardScript, runtime.Options{
		Stdout: &out, Stderr: &out, MaxProcs: 2, Trace: runtime.TraceOptions{Path: path}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("run failed: %s\n%s", rep.Summary(), out.String())
	}
	tr, err := trace.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	find := func(proc, op, object string, nth int) *trace.Event {
		t.Helper()
		for i := range tr.Events {
			if e := &tr.Events[i]; e.Proc == proc && e.Op == op && e.Object == object {
				if nth--; nth == 0 {
					return e
				}
			}
		}
		t.Fatalf("no %s %s of %q in the trace", proc, op, object)
		return nil
	}
	for _, edge := range []struct{ fromOp, object, toOp string }{
		{trace.OpPost, "s", trace.OpWait},
		{trace.OpUnlock, "mu", trace.OpLock},
		{trace.OpWrite, "f", trace.OpRead},
	} {
		from, to := find("w.1", edge.fromOp, edge.object, 1), find("boss", edge.toOp, edge.object, 1)
		if !trace.HappensBefore(from, to) {
			t.Errorf("boss's %s of %q (clock %v) does not know w.1's %s (#%d, clock %v)", edge.toOp, edge.object, to.VC, edge.fromOp, from.Seq, from.VC)
		}
		if to.Cause == nil || *to.Cause != from.Ref() {
			t.Errorf("boss's %s of %q: cause %v, want w.1's %s %v", edge.toOp, edge.object, to.Cause, edge.fromOp, from.Ref())
		}
	}
	// the second instance is beyond the board's one spawned lane
	u := tr.Uncarried
	if u == nil || u.Lanes != 2 || u.Spawned != 1 || len(u.Procs) != 1 || u.Procs[0] != "w.2" ||
		!strings.Contains(u.Note, "clock components of spawned lanes beyond 2") {
		t.Fatalf("header's uncarried = %+v, want lanes 2, 1 spawned, procs [w.2] and the note", u)
	}
	if sp := find("w.2", trace.OpSpawn, "", 1); !strings.Contains(sp.Label, "not carried") {
		t.Errorf("w.2's spawn label %q does not say its clock is not carried", sp.Label)
	}
	if sp := find("w.1", trace.OpSpawn, "", 1); sp.Label != "" {
		t.Errorf("w.1's spawn label %q: it is within the lanes", sp.Label)
	}
	if post, wait := find("w.2", trace.OpPost, "s", 1), find("boss", trace.OpWait, "s", 2); trace.HappensBefore(post, wait) {
		t.Errorf("w.2's post reached boss's wait through the board, beyond its lanes: the header says it does not")
	}
	if !strings.Contains(out.String(), `trace: process "w.2" and those spawned after it are beyond the 2 lanes`) {
		t.Errorf("no warning about w.2 beyond the lanes; output:\n%s", out.String())
	}
}
