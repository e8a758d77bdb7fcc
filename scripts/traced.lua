-- Three processes and four ways to meet: a mailbox, a pipe, a semaphore and
-- a mutex. Run it with a trace to see who waited for whom:
--
--   ipcscript run --trace run.html scripts/traced.lua
--
-- The producer sends jobs to a mailbox; the worker takes them and writes a
-- line per job into a pipe; the printer reads the lines. The worker then
-- posts a semaphore the producer waits on, and each process adds to a
-- shared counter under one mutex.
local ipc = require("ipc")

local jobs = ipc.mailbox("jobs")
local lines = ipc.pipe({from = "worker", to = "printer"})
local done = ipc.semaphore("done", 0)
local lock = ipc.mutex("lock")
local total = ipc.shm("total", 8)

local N = tonumber(arg and arg[1]) or 3

ipc.process("producer", function()
  for i = 1, N do jobs:send(i, {type = "job"}) end
  ipc.mark("all sent", {jobs = N})
  done:wait()
  lock:with(function() total:add("i64", 0, 1) end)
end)

ipc.process("worker", function()
  for _ = 1, N do
    local m = jobs:receive()
    lines:write(("job %d done\n"):format(m.body))
  end
  ipc.span("tally", function() lock:with(function() total:add("i64", 0, 1) end) end)
  done:post()
end)

ipc.process("printer", function()
  for _ = 1, N do print(lines:read()) end
  lock:with(function() total:add("i64", 0, 1) end)
end)

local report = ipc.run()
print(("total %d, ok %s"):format(total:get("i64", 0), report.ok))
