-- The dining philosophers: five philosophers around a table, one fork
-- between each two neighbours; a philosopher needs both forks to eat.
-- If each picks up the left fork and then the right one, all five can hold
-- one fork and wait forever for the other: a deadlock (ipcscript would
-- report the wait-for cycle). Here every philosopher picks up the
-- lower-numbered fork first. That orders the forks, so no cycle of waits
-- can form: philosopher 5 reaches for fork 1 before fork 5.
--
--   ipcscript scripts/dining_philosophers.lua [meals]
local ipc = require("ipc")

local n = 5
local meals = tonumber(arg[1]) or 20
local forks = {}
for i = 1, n do forks[i] = ipc.mutex("fork" .. i) end
-- u8 at i: philosopher i is eating; i32 at 8: meals eaten; i32 at 12: violations
local dining = ipc.shm("table", 16)

ipc.process("philosopher", {count = n}, function(self)
  local i = self.index
  local left, right = i, i % n + 1          -- fork numbers
  local first, second = math.min(left, right), math.max(left, right)
  for _ = 1, meals do
    ipc.sleep(0.001)                         -- think
    forks[first]:lock()
    forks[second]:lock()
    dining:set("u8", i, 1)
    -- neither neighbour can be eating: they need one of our forks
    local l, r = (i - 2) % n + 1, i % n + 1
    if dining:get("u8", l) == 1 or dining:get("u8", r) == 1 then dining:add("i32", 12, 1) end
    ipc.sleep(0.001)                         -- eat
    dining:add("i32", 8, 1)
    dining:set("u8", i, 0)
    forks[second]:unlock()
    forks[first]:unlock()
  end
end)

local report = ipc.run()
print(("%d meals eaten, %d violations, deadlock: %s"):format(dining:get("i32", 8), dining:get("i32", 12), tostring(report.deadlock)))
ipc.expect(dining:get("i32", 8) == n * meals, "every philosopher ate every meal")
ipc.expect(dining:get("i32", 12) == 0, "neighbours never ate at once")
