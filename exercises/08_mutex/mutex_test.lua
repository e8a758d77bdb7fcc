-- Exercise 8: mutual exclusion.
--
-- Two processes add to one counter in shared memory, 2000 times each.
-- counter:get then counter:set is not atomic: both may read the same
-- value, and one update is lost. A mutex makes the read-and-write a
-- critical section that one process at a time may be in: m:lock() ...
-- m:unlock(), or m:with(fn), which unlocks even when fn fails.
--
-- Declare the mutex and use it around the update.
--
--   ipcscript test exercises/08_mutex
local ipc = require("ipc")

local counter = ipc.shm("counter", 8)
local lock = nil -- TODO: a mutex

local function increment()
  counter:set("i64", 0, counter:get("i64", 0) + 1)
end

ipc.process("adder", {count = 2}, function()
  for _ = 1, 2000 do
    lock:with(increment) -- TODO: lock must be a mutex
  end
end)

local report = ipc.run()
ipc.expect(report.ok, "both adders finished")
local total = counter:get("i64", 0)
ipc.expect(total == 4000, "2 x 2000 = 4000; got " .. total .. " (" .. 4000 - total .. " lost)")
