-- Direct and indirect links, side by side.
--
-- Direct: the sender names the receiving process, ipc.send("worker.1", ...).
-- Every process has one inbox and the runtime sets up the link; the
-- receiver can pick what it takes by sender (from) and by type.
--
-- Indirect: the sender names a mailbox, a queue with an identity of its
-- own that any number of processes share. The sender does not know who
-- will take a message; each message is taken by exactly one receiver.
--
--   ipcscript scripts/direct_vs_indirect.lua
local ipc = require("ipc")

local jobs = ipc.mailbox("jobs") -- indirect: shared by both workers

ipc.process("boss", function()
  -- direct: each task goes to the worker named
  ipc.send("worker.1", "sweep the floor", {type = "task"})
  ipc.send("worker.2", "wash the car", {type = "task"})
  -- indirect: whoever is free takes the next job
  for i = 1, 6 do
    jobs:send("job " .. i)
  end
  -- one "stop" per worker, queued after every job
  for _ = 1, 2 do
    jobs:send(nil, {type = "stop"})
  end
end)

ipc.process("worker", {count = 2}, function()
  local task = ipc.receive({from = "boss", type = "task"})
  print(("told by %s to %s"):format(task.src, task.body))

  local taken = {}
  while true do
    local m = jobs:receive()
    if m.type == "stop" then break end
    taken[#taken + 1] = m.body
    ipc.sleep(0.01) -- a job takes time: the other worker gets its turn
  end
  print(("took from mailbox %q: %s"):format("jobs", table.concat(taken, ", ")))
  ipc.send("main", #taken) -- report to the supervisor
end)

ipc.run()

-- After the run, the supervisor receives what the workers sent it.
local total = 0
for _ = 1, 2 do
  total = total + ipc.receive().body
end
print(("%d of 6 jobs taken"):format(total))
