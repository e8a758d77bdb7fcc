-- The dining philosophers without deadlock: every philosopher picks up
-- the lower-numbered of its two forks first, so no cycle of waits can
-- form. While eating, a philosopher holds both forks: a span per fork.
--
-- Checked on the recorded run: the uses of each fork are ordered by
-- happens-before (exclusive per fork).
local ipc = require("ipc")

local n, meals = 5, 6
local forks = {}
for i = 1, n do forks[i] = ipc.mutex("fork" .. i) end

ipc.process("philosopher", {count = n}, function(self)
  local left, right = self.index, self.index % n + 1
  local first, second = math.min(left, right), math.max(left, right)
  for _ = 1, meals do
    forks[first]:lock()
    forks[second]:lock()
    ipc.span("fork" .. first, function()
      ipc.span("fork" .. second, function() ipc.sleep(0.001) end)
    end)
    forks[second]:unlock()
    forks[first]:unlock()
  end
end)

local report = ipc.run{trace = true}
for i = 1, n do ipc.expect(report.trace:exclusive("fork" .. i)) end
