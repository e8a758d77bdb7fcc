-- An Erlang-style supervisor (one_for_one): it starts its workers at run
-- time (ipc.spawn), monitors each (ipc.monitor), and when one crashes it
-- starts a fresh instance in its place and gives it the job the dead one
-- held. Like Erlang's, it gives up after too many restarts.
--
-- Job 7 crashes the first worker that takes it (an error, as a bug
-- would); the restarted worker does it fine. Every job is done once.
--
--   ipcscript scripts/supervisor.lua [jobs]
local ipc = require("ipc")

local JOBS, WORKERS, MAX_RESTARTS = tonumber(arg[1]) or 12, 3, 3
local flags = ipc.shared("flags", {crashed = "i32"})

ipc.process("worker", {spawn = true}, function(self)
  while true do
    local m = ipc.receive{from = "sup"}
    if m.type == "stop" then return end
    if m.body == 7 and flags:cas("crashed", 0, 1) then
      error("job 7 hit a bug in " .. self.name)
    end
    ipc.send("sup", {job = m.body, square = m.body * m.body}, {type = "done"})
  end
end)

ipc.process("sup", function()
  local next_job, held, done, ndone, restarts = 1, {}, {}, 0, 0
  local function give(w)
    if next_job <= JOBS then
      held[w] = next_job
      ipc.send(w, next_job, {type = "job"})
      next_job = next_job + 1
    else
      held[w] = nil
      ipc.send(w, nil, {type = "stop"})
    end
  end
  local function start()
    local w = ipc.spawn("worker")
    ipc.monitor(w)
    return w
  end
  for _ = 1, WORKERS do give(start()) end
  while ndone < JOBS do
    local m = ipc.receive{timeout = 60}
    if m.type == "DOWN" and held[m.body.name] then
      restarts = restarts + 1
      if restarts > MAX_RESTARTS then error("too many restarts") end
      local job = held[m.body.name]
      held[m.body.name] = nil
      local w = start()
      print(string.format("%s crashed (%s) holding job %d; restarted as %s",
        m.body.name, m.body.error and m.body.error:match("job 7.*") or tostring(m.body.signal), job, w))
      held[w] = job
      ipc.send(w, job, {type = "job"})
    elseif m.type == "done" then
      ipc.expect(not done[m.body.job], "job " .. m.body.job .. " done once")
      ipc.expect(m.body.square == m.body.job * m.body.job, "square of " .. m.body.job)
      done[m.body.job] = true
      ndone = ndone + 1
      give(m.src)
    end
  end
  print(string.format("%d of %d jobs done, each once, with %d restart(s)", ndone, JOBS, restarts))
end)

ipc.run{expect = "failure"}   -- the crashed worker fails, on purpose
