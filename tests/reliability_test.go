package tests

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The reliability suite (docs/RELIABILITY.md). Each test has a short
// profile, which CI runs with the rest, and a long one that reproduces the
// figures in the document: IPCSCRIPT_RELIABILITY=long go test ./tests -run Reliability -v
// Tests assert counts (0 survivors, 100% swept, 0 cross-talk), never
// speeds; latencies are logged as figures.

func rounds(short, long int) int {
	if os.Getenv("IPCSCRIPT_RELIABILITY") == "long" {
		return long
	}
	return short
}

// Supervisor SIGKILLed with live children, a FIFO at a given path and a
// message queue: no process of the run survives, and the next run sweeps
// what it left.
func TestReliabilitySupervisorKill(t *testing.T) {
	n := rounds(5, 200)
	dir := t.TempDir()
	script := filepath.Join(dir, "victim.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
local f = ipc.fifo("f", {path = arg[1]})
local q = ipc.mqueue("q")
ipc.process("rel_victim_"..arg[2], {count = 3}, function() os.execute("setsid sleep "..arg[3].." &") ipc.sleep(3600) end)
`), 0o644)
	survivors, left, daemons := 0, 0, 0
	for i := 0; i < n; i++ {
		tag := fmt.Sprintf("%d_%d", os.Getpid(), i)
		given := filepath.Join(dir, "given"+strconv.Itoa(i))
		dur := strconv.Itoa(5000 + i) // the daemon's sleep: a marker of its own
		cmd := ipcscript(script, given, tag, dur)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		marker := "[rel_victim_" + tag + "."
		deadline := time.Now().Add(60 * time.Second)
		for len(procsMatching(marker)) < 3 {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("round %d: the run never started", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // the sleepers are started
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		survivors += len(waitGone(marker, 120*time.Second))
		// once the children are gone, a live daemon has no one to kill it
		daemons += len(waitGone("sleep "+dur, 30*time.Second))
		killMatching(marker)
		killMatching("sleep " + dur)
		// the next run (any run) sweeps the killed run's leftovers
		if out, err := ipcscript(writeScript(t, "noop.lua", "print('x')") + "/noop.lua").CombinedOutput(); err != nil {
			t.Fatalf("the next run: %v\n%s", err, out)
		}
		if _, err := os.Lstat(given); err == nil {
			left++
		}
	}
	t.Logf("supervisor SIGKILL x%d: %d surviving processes of the run, %d of %d setsid'd daemons escaped, %d of %d given FIFOs left (%.0f%% swept)", n, survivors, daemons, 3*n, left, n, 100*float64(n-left)/float64(n))
	if survivors != 0 || daemons != 0 || left != 0 {
		t.Fatalf("%d survivors, %d daemons escaped, %d FIFOs left", survivors, daemons, left)
	}
}

// kill -9 of a running child: every kill is reported; the time from the
// kill to the supervisor's report line is the figure.
func TestReliabilityKillChild(t *testing.T) {
	n := rounds(5, 100)
	script := filepath.Join(t.TempDir(), "kill.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
ipc.process("rel_killed_"..arg[1], function() ipc.sleep(3600) end)
ipc.process("rel_other_"..arg[1], function() ipc.sleep(0.1) end)
`), 0o644)
	var lat []time.Duration
	for i := 0; i < n; i++ {
		tag := fmt.Sprintf("%d_%d", os.Getpid(), i)
		cmd := ipcscript(script, tag)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		marker := "[rel_killed_" + tag + "]"
		var pid int
		deadline := time.Now().Add(60 * time.Second)
		for pid == 0 {
			if p := procsMatching(marker); len(p) > 0 {
				pid, _ = strconv.Atoi(strings.Fields(p[0])[0])
			} else if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatal("never started")
			} else {
				time.Sleep(5 * time.Millisecond)
			}
		}
		reported := make(chan time.Time, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "rel_killed_"+tag) && strings.Contains(sc.Text(), "SIGKILL") {
					reported <- time.Now()
				}
			}
		}()
		killed := time.Now()
		syscall.Kill(pid, syscall.SIGKILL)
		select {
		case at := <-reported:
			lat = append(lat, at.Sub(killed))
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("round %d: the kill was never reported", i)
		}
		cmd.Wait()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("kill -9 of a child x%d: %d reported, 0 hangs; kill->report p50 %.1f ms, p99 %.1f ms", n, len(lat),
		float64(lat[len(lat)/2].Microseconds())/1000, float64(lat[(len(lat)*99)/100].Microseconds())/1000)
}

// Parallel runs with the same object and process names: each receives
// only its own messages.
func TestReliabilityParallelRuns(t *testing.T) {
	n := rounds(8, 50)
	script := filepath.Join(t.TempDir(), "same.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
local box = ipc.mailbox("shared_name")
local f = ipc.fifo("shared_fifo")
ipc.process("producer", function() for i = 1, 200 do box:send(arg[1]) end end)
ipc.process("consumer", function()
  local foreign = 0
  for i = 1, 200 do if box:receive().body ~= arg[1] then foreign = foreign + 1 end end
  print("foreign", foreign)
end)
`), 0o644)
	var wg sync.WaitGroup
	var mu sync.Mutex
	foreign, failed := 0, 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := ipcscript(script, fmt.Sprintf("run%d", i)).CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			if err != nil || !strings.Contains(string(out), "foreign\t0") {
				failed++
				t.Logf("run %d: %v\n%s", i, err, out)
			}
			if strings.Contains(string(out), "foreign\t") && !strings.Contains(string(out), "foreign\t0") {
				foreign++
			}
		}(i)
	}
	wg.Wait()
	t.Logf("%d parallel runs with the same names: %d with cross-talk, %d failed", n, foreign, failed)
	if foreign != 0 || failed != 0 {
		t.Fatalf("%d runs saw another run's messages, %d failed", foreign, failed)
	}
}

// MPMC through one bounded mailbox, every body checksummed: each message
// is received exactly once (a byte per message in shared memory counts
// receptions), intact, and in order per producer at each consumer.
func TestReliabilityMPMC(t *testing.T) {
	per := rounds(500, 500000) // per producer; 4 producers
	script := filepath.Join(t.TempDir(), "mpmc.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
local P, C, N = 4, 4, tonumber(arg[1])
local box = ipc.mailbox("m", {capacity = 64})
local seen = ipc.shm("seen", P * N + 4)
local function sum(s) local h = 0 for k = 1, #s do h = (h * 31 + s:byte(k)) % 4294967291 end return h end
ipc.process("prod", {count = P}, function(self)
  for i = 1, N do
    local data = self.index .. ":" .. i .. ":" .. string.rep("d", i % 17)
    box:send({p = self.index, i = i, data = data, sum = sum(data)})
  end
  -- the last producer to finish closes the mailbox: the consumers drain
  -- what is queued and then get "closed" (no timeout ends them)
  if seen:add("i32", P * N, 1) == P then box:close() end
end)
ipc.process("cons", {count = C}, function(self)
  local last, bad, order = {}, 0, 0
  while true do
    local m, err = box:receive()
    if not m then assert(err == "closed", err) break end
    local b = m.body
    if sum(b.data) ~= b.sum then bad = bad + 1 end
    if (last[b.p] or 0) >= b.i then order = order + 1 end
    last[b.p] = b.i
    seen:add("u8", (b.p - 1) * N + (b.i - 1), 1)
  end
  print("bad", bad, "order", order)
end)
ipc.run()
local lost, dup = 0, 0
for k = 0, P * N - 1 do
  local v = seen:get("u8", k)
  if v == 0 then lost = lost + 1 elseif v > 1 then dup = dup + 1 end
end
print("total", P * N, "lost", lost, "dup", dup)
`), 0o644)
	out, err := ipcscript(script, strconv.Itoa(per)).CombinedOutput()
	s := string(out)
	if err != nil || !strings.Contains(s, fmt.Sprintf("total\t%d\tlost\t0\tdup\t0", 4*per)) || strings.Count(s, "bad\t0\torder\t0") != 4 {
		t.Fatalf("%v\n%s", err, s)
	}
	t.Logf("MPMC 4x4 through capacity 64: %d messages, 0 lost, 0 duplicated, 0 corrupt, 0 reordered", 4*per)
}

// Records of 4000 bytes (< PIPE_BUF) from 5 writers through one pipe
// arrive whole: none torn.
func TestReliabilityPipeAtomicity(t *testing.T) {
	per := rounds(400, 20000) // per writer
	script := filepath.Join(t.TempDir(), "atomic.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
local N = tonumber(arg[1])
local p = ipc.pipe{from = "w", to = "r"}
ipc.process("w", {count = 5}, function(self)
  local rec = string.rep(string.char(64 + self.index), 4000)
  for i = 1, N do p:write(rec) end
  p:close()
end)
ipc.process("r", function()
  local n, torn = 0, 0
  while true do
    local r = p:read(4000)
    if not r then break end
    n = n + 1
    if #r ~= 4000 or r ~= string.rep(r:sub(1, 1), 4000) then torn = torn + 1 end
  end
  print("records", n, "torn", torn)
end)
`), 0o644)
	out, err := ipcscript(script, strconv.Itoa(per)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("records\t%d\ttorn\t0", 5*per)) {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("pipe atomicity: %d records of 4000 bytes from 5 writers, 0 torn", 5*per)
}

// A token passed round a ring of processes by direct links: every hop
// arrives once, from the right neighbour, in order (the token counts its
// hops and each process knows which counts it must see).
func TestReliabilityTokenRing(t *testing.T) {
	procs, laps := rounds(16, 64), rounds(50, 2000)
	script := filepath.Join(t.TempDir(), "ring.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
local N, LAPS = tonumber(arg[1]), tonumber(arg[2])
ipc.process("node", {count = N}, function(self)
  local i = self.index
  local nxt, prev = "node." .. (i % N + 1), "node." .. ((i - 2) % N + 1)
  local bad = 0
  if i == 1 then ipc.send(nxt, {hop = 1}) end
  for lap = 1, LAPS do
    local m = ipc.receive()
    -- node i (i > 1) sees hop (lap-1)*N + i-1; node 1 ends each lap: lap*N
    local want = (i == 1) and lap * N or (lap - 1) * N + i - 1
    if m.body.hop ~= want or m.src ~= prev then bad = bad + 1 end
    if not (i == 1 and lap == LAPS) then ipc.send(nxt, {hop = m.body.hop + 1}) end
    if i == 1 and lap == LAPS then print("final", m.body.hop) end
  end
  print("bad", bad)
end)
`), 0o644)
	out, err := ipcscript("--no-prefix", script, strconv.Itoa(procs), strconv.Itoa(laps)).CombinedOutput()
	s := string(out)
	if err != nil || strings.Count(s, "bad\t0\n") != procs || !strings.Contains(s, fmt.Sprintf("final\t%d\n", procs*laps)) {
		t.Fatalf("%v\n%s", err, s)
	}
	t.Logf("token ring: %d processes x %d laps = %d hops, 0 lost, 0 out of order, 0 from the wrong neighbour", procs, laps, procs*laps)
}

// Backpressure: a producer sends far more than a mailbox of capacity 64
// holds to a consumer that takes its time; the producer waits for room
// (counted: sends that found the mailbox full), every byte arrives
// (compared with what was sent), and no process grows with the volume:
// the peak RSS (VmHWM) of the producer, the consumer and the supervisor
// stays under a bound that does not depend on it.
func TestReliabilityBackpressureRSS(t *testing.T) {
	const size = 64 << 10
	total := rounds(128<<20, 1<<30)
	// Peaks seen: ~54 MiB for 64 MiB and for 1 GiB alike (a race-detector
	// build's Go heaps and the 64 x 64 KiB ring); a process that kept what
	// it could not send yet would pass it even in the short profile.
	const boundKiB = 96 << 10
	script := filepath.Join(t.TempDir(), "backpressure.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
local TOTAL, SIZE = tonumber(arg[1]), tonumber(arg[2])
local N = math.floor(TOTAL / SIZE)
local box = ipc.mailbox("m", {capacity = 64})
local function hwm()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end
local function body(i) return string.rep(string.format("%08d", i), SIZE / 8) end
ipc.process("producer", function()
  local full = 0
  for i = 1, N do
    local b = body(i)
    if not box:send(b, {block = false}) then
      full = full + 1
      assert(box:send(b))
    end
  end
  print("producer", "full", full, "hwm", hwm())
end)
ipc.process("consumer", function()
  local bytes, bad = 0, 0
  for i = 1, N do
    local m = box:receive()
    if m.body ~= body(i) then bad = bad + 1 end
    bytes = bytes + #m.body
    if i % 8 == 0 then ipc.sleep(0.001) end
  end
  print("consumer", "bytes", bytes, "bad", bad, "hwm", hwm())
end)
ipc.run()
print("supervisor", "hwm", hwm())
`), 0o644)
	out, err := ipcscript("--no-prefix", script, strconv.Itoa(total), strconv.Itoa(size)).CombinedOutput()
	s := string(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	var full, bytes, bad int
	hwm := map[string]int{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Split(line, "\t")
		switch {
		case len(f) == 5 && f[0] == "producer":
			full, _ = strconv.Atoi(f[2])
			hwm[f[0]], _ = strconv.Atoi(f[4])
		case len(f) == 7 && f[0] == "consumer":
			bytes, _ = strconv.Atoi(f[2])
			bad, _ = strconv.Atoi(f[4])
			hwm[f[0]], _ = strconv.Atoi(f[6])
		case len(f) == 3 && f[0] == "supervisor":
			hwm[f[0]], _ = strconv.Atoi(f[2])
		}
	}
	if bytes != total || bad != 0 || len(hwm) != 3 {
		t.Fatalf("%d of %d bytes arrived, %d bodies differ from what was sent, peaks %v\n%s", bytes, total, bad, hwm, s)
	}
	if full == 0 {
		t.Fatalf("the mailbox was never full: no backpressure was exercised\n%s", s)
	}
	for who, kib := range hwm {
		if kib <= 0 || kib > boundKiB {
			t.Errorf("%s: peak RSS %d KiB, bound %d KiB", who, kib, boundKiB)
		}
	}
	t.Logf("backpressure: %d MiB in %d KiB bodies through capacity 64, %d sends found it full, 0 lost, 0 corrupt; peak RSS producer %.1f MiB, consumer %.1f MiB, supervisor %.1f MiB",
		total>>20, size>>10, full, float64(hwm["producer"])/1024, float64(hwm["consumer"])/1024, float64(hwm["supervisor"])/1024)
}

// The leak audit: a run that uses every kind of object (everyKind, as
// TestLeak) again and again (short: 10 runs, long: 1,000). After all of
// them /dev/shm, /dev/mqueue and /tmp hold nothing new, this process has
// as many descriptors as before, and neither a process of the runs nor a
// zombie child is left.
func TestReliabilityLeakAudit(t *testing.T) {
	mqueueMounted(t)
	n := rounds(10, 1000)
	dir := writeScript(t, "every.lua", everyKind)
	tag := fmt.Sprintf("audit%d", os.Getpid())
	given := filepath.Join(t.TempDir(), "given.fifo")
	before := snapshot()
	fdsBefore := countFDs()
	for i := 1; i <= n; i++ {
		cmd := ipcscript("--no-prefix", "every.lua", "ok", given, tag)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "ready ") {
			t.Fatalf("run %d: %v\n%s", i, err, out)
		}
		if _, err := os.Lstat(given); !os.IsNotExist(err) {
			t.Fatalf("run %d left the FIFO at the given path (%v)", i, err)
		}
	}
	waitNoProcs(t, "["+tag+"_")
	if left := leftSince(before); len(left) > 0 {
		t.Errorf("left behind after %d runs: %s", n, strings.Join(left, ", "))
	}
	fdsAfter := countFDs()
	if fdsAfter != fdsBefore {
		t.Errorf("descriptors of the test process: %d before %d runs, %d after", fdsBefore, n, fdsAfter)
	}
	if z := zombieChildren(); len(z) > 0 {
		t.Errorf("zombie children after %d runs: %v", n, z)
	}
	t.Logf("leak audit: %d runs of every object kind: nothing new in /dev/shm, /dev/mqueue, /tmp; descriptors %d -> %d; 0 processes, 0 zombies left", n, fdsBefore, fdsAfter)
}

func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// zombieChildren lists this process's children that have ended and not
// been reaped.
func zombieChildren() []string {
	var z []string
	self := strconv.Itoa(os.Getpid())
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // state ppid ...
		if len(f) > 1 && f[0] == "Z" && f[1] == self {
			z = append(z, e.Name()+" "+s[:i+1])
		}
	}
	return z
}
