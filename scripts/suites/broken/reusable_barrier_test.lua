-- BROKEN twin of ../reusable_barrier_test.lua: instead of a barrier,
-- each worker sleeps "long enough" for the others to catch up. In most
-- runs the rounds do not mix in time, but sleeping is not
-- synchronization: nothing orders one worker's round before another's
-- next round, and the check says so in every run.
-- fails with: happens_before: nothing ordered worker.
local ipc = require("ipc")

local n, rounds = 4, 5

ipc.process("worker", {count = n}, function()
  for r = 1, rounds do
    ipc.mark("round" .. r)
    ipc.sleep(0.02)
  end
end)

local report = ipc.run{trace = true}
for r = 1, rounds - 1 do
  ipc.expect(report.trace:happens_before("round" .. r, "round" .. r + 1))
end
