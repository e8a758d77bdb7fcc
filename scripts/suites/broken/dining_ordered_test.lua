-- BROKEN twin of ../dining_ordered_test.lua: each philosopher locks only
-- the first of its two forks, and eats with the second one unlocked.
-- fails with: exclusive: 
local ipc = require("ipc")

local n, meals = 5, 6
local forks = {}
for i = 1, n do forks[i] = ipc.mutex("fork" .. i) end

ipc.process("philosopher", {count = n}, function(self)
  local left, right = self.index, self.index % n + 1
  local first, second = math.min(left, right), math.max(left, right)
  for _ = 1, meals do
    forks[first]:lock()
    ipc.span("fork" .. first, function()
      ipc.span("fork" .. second, function() ipc.sleep(0.001) end)
    end)
    forks[first]:unlock()
  end
end)

local report = ipc.run{trace = true}
for i = 1, n do ipc.expect(report.trace:exclusive("fork" .. i)) end
