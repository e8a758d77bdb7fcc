-- POSIX message queues: a kernel queue of messages (not a byte stream)
-- with a priority each; a receive takes the oldest message of the highest
-- priority. The queue holds at most `capacity` messages of at most
-- `msgsize` bytes: a send waits while it is full, a receive while it is
-- empty (or returns at once with block = false).
--
--   ipcscript scripts/mqueue.lua
local ipc = require("ipc")

-- public = true gives the queue a name other programs can mq_open (q.name,
-- listed in /dev/mqueue); by default it has none and lives on descriptors.
local jobs = ipc.mqueue("jobs", {capacity = 8, msgsize = 128, public = true})
local queued = ipc.semaphore("queued", 0)

ipc.process("dispatcher", function()
  print("queue " .. jobs.name .. ", capacity " .. jobs.capacity)
  jobs:send("backup the logs", {priority = 1})
  jobs:send("answer the pager", {priority = 9})
  jobs:send("rotate the keys", {priority = 5})
  jobs:send("tidy the desk", {priority = 0})
  jobs:send("restart the server", {priority = 9})
  queued:post() -- everything is queued: let the worker start
end)

ipc.process("worker", function()
  queued:wait()
  local last = math.huge
  while true do
    local job, prio = jobs:receive{block = false}
    if not job then break end -- nil, "empty": nothing left
    print(("priority %d: %s"):format(prio, job))
    ipc.expect(prio <= last, "highest priority first")
    last = prio
  end
end)
