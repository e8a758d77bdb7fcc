-- Monitors, Erlang style: a supervisor learns that a worker died from a
-- DOWN message in its inbox (ipc.monitor), and hands the dead worker's
-- unfinished jobs to a standby worker; ipc.wait waits for a process's end
-- as waitpid does.
--
-- Three workers take jobs from the supervisor one at a time and report each
-- result. Worker 2 is killed (SIGKILL) in the middle of its first job. The
-- supervisor sees DOWN for it, with the signal, and gives the job it held to
-- the standby, which was declared up front and idles until needed
-- (scripts/supervisor.lua starts a fresh worker with ipc.spawn instead).
-- Every job is done once.
--
--   ipcscript scripts/monitor.lua
local ipc = require("ipc")

local JOBS, WORKERS = 12, 3

ipc.process("worker", {count = WORKERS}, function(self)
  local n = 0
  while true do
    local m = ipc.receive{from = "boss"}
    if m.type == "stop" then return end
    n = n + 1
    if self.index == 2 and n == 1 then
      os.execute("kill -9 " .. self.pid)   -- dies holding its first job
      ipc.sleep(60)
    end
    ipc.send("boss", {job = m.body, by = self.name}, {type = "done"})
  end
end)

ipc.process("standby", function(self)
  while true do
    local m = ipc.receive{from = "boss"}
    if m.type == "stop" then return end
    ipc.send("boss", {job = m.body, by = self.name}, {type = "done"})
  end
end)

ipc.process("boss", function()
  local next_job, done, held, lost = 1, {}, {}, nil
  local idle = {}
  for i = 1, WORKERS do
    local w = "worker." .. i
    ipc.monitor(w)
    idle[#idle + 1] = w
  end
  local function assign(w)
    if next_job <= JOBS then
      held[w] = next_job
      ipc.send(w, next_job, {type = "job"})
      next_job = next_job + 1
    else
      ipc.send(w, nil, {type = "stop"})
    end
  end
  for _, w in ipairs(idle) do assign(w) end
  local ndone = 0
  while ndone < JOBS do
    local m = ipc.receive{timeout = 30}
    if m.type == "DOWN" and held[m.body.name] then   -- down with a job in hand
      local dead = m.body.name
      print(string.format("%s is down (%s); its job %d goes to the standby", dead,
        m.body.signal or ("exit " .. tostring(m.body.exit)), held[dead]))
      ipc.send("standby", held[dead], {type = "job"})
      lost, held[dead] = held[dead], nil
    elseif m.type == "done" then
      ipc.expect(not done[m.body.job], "job " .. m.body.job .. " done once")
      done[m.body.job] = m.body.by
      ndone = ndone + 1
      held[m.src] = nil
      if m.src ~= "standby" then assign(m.src) end
    end
  end
  ipc.send("standby", nil, {type = "stop"})
  for i = 1, WORKERS do
    local st = ipc.wait("worker." .. i)
    print(string.format("worker.%d ended: ok=%s signal=%s", i, tostring(st.ok), tostring(st.signal)))
  end
  print(string.format("%d of %d jobs done, each once; job %s redone by %s", ndone, JOBS, tostring(lost), tostring(lost and done[lost])))
end)

local report = ipc.run{expect = "failure"}   -- worker.2 is killed on purpose
ipc.expect(report.processes.boss.ok, "the boss finished")
