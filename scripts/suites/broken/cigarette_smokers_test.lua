-- The cigarette smokers (Patil; Downey's pusher solution): an agent puts
-- two of three ingredients on the table; of three smokers, each with an
-- endless supply of one ingredient, the one with the third must make a
-- cigarette. The agent signals ingredients only (it cannot be changed);
-- three pushers, one per ingredient, note what is on the table and wake
-- the smoker that can use it.
--
-- BROKEN twin: a smoker tells the agent it is done before making its
-- cigarette, so the next smoker may start while it still works. Nothing
-- orders one cigarette before the next.
-- fails with: exclusive: smoker\.\d and smoker\.\d were in span "smoke"
--
-- Checked on the recorded run: making cigarettes is exclusive — each is
-- made after the previous one, in happens-before (the agent waits for the
-- smoker to finish before putting out the next pair).
local ipc = require("ipc")

local rounds = 9
local names = {"tobacco", "paper", "match"}
local agentSem = ipc.semaphore("agent", 1)
local on, smoker = {}, {}
for i, n in ipairs(names) do
  on[i] = ipc.semaphore(n, 0)              -- the agent put this ingredient out
  smoker[i] = ipc.semaphore(n .. "_smoker", 0) -- the smoker who has it may go
end
local mutex = ipc.semaphore("mutex", 1)
local tbl = ipc.shm("table", 12)          -- i32 per ingredient: lying on the table

-- round r leaves out ingredient r % 3 + 1, for its smoker
local function missing(r) return r % 3 + 1 end
local function count(pred)
  local c = 0
  for r = 1, rounds do if pred(r) then c = c + 1 end end
  return c
end

ipc.process("agent", function()
  for r = 1, rounds do
    agentSem:wait()
    for i = 1, 3 do if i ~= missing(r) then on[i]:post() end end
  end
end)

ipc.process("pusher", {count = 3}, function(self)
  local mine = self.index
  for _ = 1, count(function(r) return missing(r) ~= mine end) do
    on[mine]:wait()
    mutex:wait()
    local woke = false
    for other = 1, 3 do
      if other ~= mine and tbl:get("i32", 4 * (other - 1)) == 1 then
        tbl:set("i32", 4 * (other - 1), 0)
        smoker[6 - mine - other]:post() -- the third ingredient's smoker
        woke = true
        break
      end
    end
    if not woke then tbl:set("i32", 4 * (mine - 1), 1) end
    mutex:post()
  end
end)

ipc.process("smoker", {count = 3}, function(self)
  for _ = 1, count(function(r) return missing(r) == self.index end) do
    smoker[self.index]:wait()
    agentSem:post() -- wrongly, before the cigarette is made
    ipc.span("smoke", ipc.sleep, 0.001)
  end
end)

local report = ipc.run{trace = true}
ipc.expect(report.trace:exclusive("smoke"))
