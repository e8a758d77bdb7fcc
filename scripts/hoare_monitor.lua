-- A bounded buffer as a Hoare monitor, built from semaphores (Hoare 1974).
--
-- In a Hoare monitor a signal hands the monitor straight to the process it
-- wakes: the signaller steps aside (onto the "urgent" queue) until the
-- woken process leaves the monitor or waits again. So a waiter can test
-- its condition with `if`, not `while`: nobody can change the state
-- between the signal and the waiter running. (ipc.cond has Mesa
-- semantics instead, the semantics of pthreads and Java: there the waiter
-- re-checks in a loop; see cond_buffer.lua.)
--
-- The construction: `entry` (a semaphore of 1) admits one process at a
-- time; `urgent` parks signallers; each condition is a semaphore plus a
-- count of its waiters, all in shared memory.
--
--   wait(c):   c.count++; release(); c.sem:wait(); c.count--
--   signal(c): if c.count > 0 then urgent++; c.sem:post(); urgent_sem:wait(); urgent-- end
--   release(): if urgent > 0 then urgent_sem:post() else entry:post() end
--
--   ipcscript scripts/hoare_monitor.lua [items per producer]
local ipc = require("ipc")

local SLOTS, PRODUCERS, CONSUMERS = 3, 2, 2
local items = tonumber(arg[1]) or 100
local total = PRODUCERS * items

local entry = ipc.semaphore("entry", 1)
local urgent_sem = ipc.semaphore("urgent", 0)
local not_full = ipc.semaphore("not_full", 0)
local not_empty = ipc.semaphore("not_empty", 0)
local m = ipc.shared("monitor", {
  urgent = "i32", not_full_waiting = "i32", not_empty_waiting = "i32",
  ring = {"i64", SLOTS}, head = "i32", count = "i32",
  consumed = "i64", sum = "i64", max_count = "i32",
})

-- The monitor's machinery.
local function enter() entry:wait() end
local function release()
  if m.urgent > 0 then urgent_sem:post() else entry:post() end
end
local function wait(sem, counter)
  m[counter] = m[counter] + 1
  release()
  sem:wait()              -- when this returns, the monitor is ours: the signaller handed it over
  m[counter] = m[counter] - 1
end
local function signal(sem, counter)
  if m[counter] > 0 then
    m.urgent = m.urgent + 1
    sem:post()
    urgent_sem:wait()     -- the woken process runs in the monitor first
    m.urgent = m.urgent - 1
  end
end

-- The monitor's procedures.
local function put(x)
  enter()
  if m.count == SLOTS then wait(not_full, "not_full_waiting") end   -- `if`: Hoare semantics
  ipc.expect(m.count < SLOTS, "a woken producer finds room")
  m.ring[(m.head + m.count) % SLOTS + 1] = x
  m.count = m.count + 1
  if m.count > m.max_count then m.max_count = m.count end
  signal(not_empty, "not_empty_waiting")
  release()
end

local function take()
  enter()
  if m.count == 0 then wait(not_empty, "not_empty_waiting") end
  ipc.expect(m.count > 0, "a woken consumer finds an item")
  local x = m.ring[m.head + 1]
  m.head = (m.head + 1) % SLOTS
  m.count = m.count - 1
  signal(not_full, "not_full_waiting")
  release()
  return x
end

ipc.process("producer", {count = PRODUCERS}, function(self)
  for i = 1, items do put(self.index * 1000 + i) end
end)

ipc.process("consumer", {count = CONSUMERS}, function(self)
  local n = 0
  while true do
    local claimed = m:add("consumed", 1)
    if claimed > total then break end
    local x = take()
    m:add("sum", x)
    n = n + 1
  end
  print(string.format("consumed %d items", n))
end)

local report = ipc.run()
local want = 0
for p = 1, PRODUCERS do for i = 1, items do want = want + p * 1000 + i end end
ipc.expect(m.sum == want, "every item consumed exactly once")
ipc.expect(m.max_count <= SLOTS, "never more than SLOTS items buffered")
print(string.format("%d items through a %d-slot Hoare monitor; sum %s; ok %s",
  total, SLOTS, m.sum == want and "right" or "WRONG", tostring(report.ok)))
