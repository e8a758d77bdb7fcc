package tests

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ipcscript/ipcscript/runtime"
)

// The race detector (--race) on a counter that two processes increment
// with get and set: reported in every run when nothing orders the
// accesses; never reported when a mutex, a semaphore or a message orders
// them, nor for atomic adds. 20 runs each: a detector that only sometimes
// sees a race, or sometimes sees one that is not there, fails.

const raceUnlocked = `local ipc = require("ipc")
local mem = ipc.shm("counter", 8)
ipc.process("inc", {count = 2}, function()
  for _ = 1, 50 do
    mem:set("i64", 0, mem:get("i64", 0) + 1)
  end
end)
`

const raceMutex = `local ipc = require("ipc")
local mem = ipc.shm("counter", 8)
local mu = ipc.mutex("mu")
ipc.process("inc", {count = 2}, function()
  for _ = 1, 50 do
    mu:lock()
    mem:set("i64", 0, mem:get("i64", 0) + 1)
    mu:unlock()
  end
end)
`

const raceSemaphore = `local ipc = require("ipc")
local mem = ipc.shm("counter", 8)
local s = ipc.semaphore("s", 1)
ipc.process("inc", {count = 2}, function()
  for _ = 1, 50 do
    s:wait()
    mem:set("i64", 0, mem:get("i64", 0) + 1)
    s:post()
  end
end)
`

// A token passed back and forth: whoever holds it may touch the counter.
const raceMessage = `local ipc = require("ipc")
local mem = ipc.shm("counter", 8)
ipc.process("inc", {count = 2}, function(self)
  local peer = self.index == 1 and "inc.2" or "inc.1"
  for i = 1, 50 do
    if self.index == 2 or i > 1 then ipc.receive{from = peer} end
    mem:set("i64", 0, mem:get("i64", 0) + 1)
    if not (self.index == 2 and i == 50) then ipc.send(peer, "token") end
  end
end)
`

const raceAtomic = `local ipc = require("ipc")
local mem = ipc.shm("counter", 16)
ipc.process("inc", {count = 3}, function()
  for _ = 1, 50 do
    mem:add("i64", 0, 1)
    local v = mem:add("i64", 8, 0)
    mem:cas("i64", 8, v, v + 1)
  end
end)
`

// The same with spawned instances (ipc.spawn): their accesses are
// ordered by the mutex, or by the semaphore they post, through the clock
// board's lanes for spawned processes.
const raceSpawnMutex = `local ipc = require("ipc")
local mem = ipc.shm("counter", 8)
local mu = ipc.mutex("mu")
local function inc()
  for _ = 1, 50 do
    mu:lock()
    mem:set("i64", 0, mem:get("i64", 0) + 1)
    mu:unlock()
  end
end
ipc.process("inc", {spawn = true}, inc)
ipc.process("boss", function()
  local a, b = ipc.spawn("inc"), ipc.spawn("inc")
  inc()
  ipc.wait(a)
  ipc.wait(b)
end)
`

const raceSpawnSemaphore = `local ipc = require("ipc")
local mem = ipc.shm("counter", 8)
local s = ipc.semaphore("s", 0)
ipc.process("w", {spawn = true}, function()
  mem:set("i64", 0, 41)
  s:post()
end)
ipc.process("boss", function()
  ipc.spawn("w")
  s:wait()
  mem:set("i64", 0, mem:get("i64", 0) + 1)
end)
`

func raceRun(t *testing.T, name, src string) *runtime.Report {
	t.Helper()
	rep, err := runtime.RunString(context.Background(), name, src, runtime.Options{Race: true, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestRaceDetectorReportsUnlockedCounter(t *testing.T) {
	t.Parallel()
	runs := 20
	if testing.Short() {
		runs = 3
	}
	var caught atomic.Int32
	parallelRuns(t, runs, func(t *testing.T, i int) {
		rep := raceRun(t, "unlocked.lua", raceUnlocked)
		if len(rep.Races) == 0 {
			t.Fatalf("run %d: no race reported", i)
		}
		r := rep.Races[0]
		for _, want := range []string{`data race on shm "counter" bytes 0..7`, "inc.1", "inc.2", "unlocked.lua:5"} {
			if !strings.Contains(r, want) {
				t.Errorf("run %d: report lacks %q:\n%s", i, want, r)
			}
		}
		if rep.ExitCode() != runtime.ExitRace || rep.OK {
			t.Errorf("run %d: exit code %d, ok %v; want %d", i, rep.ExitCode(), rep.OK, runtime.ExitRace)
		}
		caught.Add(1)
	})
	t.Logf("unlocked counter: race reported in %d/%d runs", caught.Load(), runs)
	if int(caught.Load()) != runs {
		t.Fatalf("race reported in %d of %d runs", caught.Load(), runs)
	}
}

func TestRaceDetectorNoFalsePositives(t *testing.T) {
	t.Parallel()
	runs := 20
	if testing.Short() {
		runs = 3
	}
	for _, c := range []struct{ name, src string }{
		{"mutex.lua", raceMutex}, {"semaphore.lua", raceSemaphore}, {"message.lua", raceMessage}, {"atomic.lua", raceAtomic},
		{"spawn_mutex.lua", raceSpawnMutex}, {"spawn_semaphore.lua", raceSpawnSemaphore},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var reported, clean atomic.Int32
			parallelRuns(t, runs, func(t *testing.T, i int) {
				rep := raceRun(t, c.name, c.src)
				if !rep.OK {
					t.Fatalf("run %d failed: %s", i, rep.Summary())
				}
				if len(rep.Races) > 0 {
					reported.Add(1)
					t.Fatalf("run %d: false positive:\n%s", i, rep.Races[0])
				}
				clean.Add(1)
			})
			t.Logf("%s: %d false positives in %d runs", c.name, reported.Load(), runs)
			if int(clean.Load()) != runs {
				t.Fatalf("%d of %d runs were clean", clean.Load(), runs)
			}
		})
	}
}

// ipc.shared fields are shared memory too: a field read and written
// without a lock is a race; v:add is atomic.
func TestRaceDetectorSharedVariables(t *testing.T) {
	t.Parallel()
	unlocked := `local ipc = require("ipc")
local v = ipc.shared("stats", {n = "i64"})
ipc.process("inc", {count = 2}, function()
  for _ = 1, 50 do
    v.n = v.n + 1
  end
end)
`
	atomic := `local ipc = require("ipc")
local v = ipc.shared("stats", {n = "i64"})
ipc.process("inc", {count = 2}, function()
  for _ = 1, 50 do v:add("n", 1) end
end)
`
	rep := raceRun(t, "shared.lua", unlocked)
	if len(rep.Races) == 0 || !strings.Contains(rep.Races[0], `data race on shared "stats"`) || !strings.Contains(rep.Races[0], "shared.lua:5") {
		t.Fatalf("unlocked shared field: races %q", rep.Races)
	}
	if rep := raceRun(t, "shared_atomic.lua", atomic); len(rep.Races) != 0 || !rep.OK {
		t.Fatalf("v:add reported: %q (%s)", rep.Races, rep.Summary())
	}
}

// A process spawned beyond the clock board's lanes (under --max-procs 2,
// one declared process leaves one spawned lane): its post's order is not
// in the clocks, so the race detector reports accesses it ordered, and
// says why this race may not be one. The first instance, within the
// lanes, is ordered by the same post.
func TestRaceDetectorSpawnedBeyondLanes(t *testing.T) {
	t.Parallel()
	src := `local ipc = require("ipc")
local mem = ipc.shm("counter", 8)
local s = ipc.semaphore("s", 0)
ipc.process("w", {spawn = true}, function()
  mem:set("i64", 0, mem:get("i64", 0) + 1)
  s:post()
end)
ipc.process("boss", function()
  for _ = 1, 2 do
    local w = ipc.spawn("w")
    s:wait()
    mem:set("i64", 0, mem:get("i64", 0) + 1)
    ipc.wait(w)
  end
end)
`
	rep, err := runtime.RunString(context.Background(), "beyond.lua", src, runtime.Options{Race: true, Quiet: true, MaxProcs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Races) != 1 {
		t.Fatalf("%d races, want the one of w.2 (beyond the lanes): %q", len(rep.Races), rep.Races)
	}
	r := rep.Races[0]
	for _, want := range []string{"w.2", "beyond.lua:5", "beyond.lua:12",
		`w.2 was spawned beyond the clock board's lanes (the trace header's "uncarried")`} {
		if !strings.Contains(r, want) {
			t.Errorf("report lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r, "w.1") {
		t.Errorf("w.1 is within the lanes, ordered by its post:\n%s", r)
	}
}
