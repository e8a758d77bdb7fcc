-- Mutual exclusion: four processes add 1 to a shared counter 5000 times
-- each. `x = x + 1` is a read, an add and a write; two processes doing it
-- at once can both read the same value, and one update is lost. Under a
-- mutex the total is exact. (An atomic add, mem:add, needs no lock.)
--
--   ipcscript scripts/mutex.lua
local ipc = require("ipc")

local lock = ipc.mutex("counter")
local mem = ipc.shm("counters", 24) -- i64 counters: 0 unguarded, 8 and 16 guarded

ipc.process("adder", {count = 4}, function()
  for _ = 1, 5000 do
    mem:set("i64", 0, mem:get("i64", 0) + 1)   -- a race: updates get lost

    lock:lock()                                -- only one process at a time
    mem:set("i64", 8, mem:get("i64", 8) + 1)
    lock:unlock()

    -- the same with with(): lock, call, unlock (even if the call fails)
    lock:with(function() mem:set("i64", 16, mem:get("i64", 16) + 1) end)
  end
end)

ipc.run()
local racy, safe, safe2 = mem:get("i64", 0), mem:get("i64", 8), mem:get("i64", 16)
print(("without the mutex: %d (%d lost); with it: %d and %d"):format(racy, 20000 - racy, safe, safe2))
ipc.expect(safe == 20000 and safe2 == 20000, "the mutex loses no update")
