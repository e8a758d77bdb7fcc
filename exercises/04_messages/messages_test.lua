-- Exercise 4: message passing, indirect and direct.
--
-- An indirect link is a mailbox: any number of processes share it, and each
-- message is taken by exactly one receiver, whoever asks first. A direct
-- link names the peer: ipc.send(name, body) puts the message in that
-- process's own inbox, and ipc.receive() takes from one's own inbox.
--
-- "boss" puts 4 jobs (numbers) in the mailbox "jobs"; two workers take
-- them. Complete the worker: reply to the process that sent the job
-- (msg.src) directly, with the job's number doubled. The boss collects 4
-- replies from its inbox, then tells the workers to stop.
--
--   ipcscript test exercises/04_messages
local ipc = require("ipc")

local jobs = ipc.mailbox("jobs")

ipc.process("boss", function()
  for i = 1, 4 do jobs:send(i) end
  local sum = 0
  for _ = 1, 4 do sum = sum + ipc.receive().body end
  ipc.expect(sum == 20, "2 + 4 + 6 + 8 = 20; got " .. sum)
  for _ = 1, 2 do jobs:send(nil, {type = "stop"}) end
end)

ipc.process("worker", {count = 2}, function()
  while true do
    local msg = jobs:receive()
    if msg.type == "stop" then break end
    -- TODO: send msg.body * 2 to msg.src (a direct link).
  end
end)
