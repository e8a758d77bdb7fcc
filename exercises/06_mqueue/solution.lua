-- Exercise 6: kernel message queues and priorities.
--
-- ipc.mqueue is a POSIX message queue, kept by the kernel: bytes in,
-- bytes out, and the highest priority first (then the order of sending).
--
-- "dispatcher" queues three jobs, then tells "worker" to start. Give them
-- priorities so that the worker receives "fire" first, then "leak", then
-- "dust" (q:send(bytes, {priority = n}); higher n comes out first).
--
--   ipcscript test exercises/06_mqueue
local ipc = require("ipc")

local q = ipc.mqueue("jobs", {capacity = 8, msgsize = 64})

ipc.process("dispatcher", function()
  q:send("dust", {priority = 0})
  q:send("leak", {priority = 5})
  q:send("fire", {priority = 9})
  ipc.send("worker", "start") -- all three are queued by now
end)

ipc.process("worker", function()
  ipc.receive({from = "dispatcher"})
  local order = {}
  for i = 1, 3 do order[i] = q:receive() end
  local got = table.concat(order, " ")
  ipc.expect(got == "fire leak dust", "highest priority first: fire leak dust; got " .. got)
end)
