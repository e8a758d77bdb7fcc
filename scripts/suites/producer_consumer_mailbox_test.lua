-- Producer/consumer over mailboxes: one of capacity 2 (a producer blocks
-- while two messages wait) and one of capacity 0 (rendezvous: a send
-- returns once a consumer has taken the message).
--
-- Checked on the recorded run: every message sent was received exactly
-- once, and messages of one producer left the mailbox in the order sent.
local ipc = require("ipc")

local producers, consumers, items = 2, 2, 10
local boxes = {ipc.mailbox("bounded", {capacity = 2}), ipc.mailbox("rendezvous", {capacity = 0})}

ipc.process("producer", {count = producers}, function(self)
  for _, box in ipairs(boxes) do
    for i = 1, items do box:send({self.index, i}) end
  end
end)

ipc.process("consumer", {count = consumers}, function()
  for _, box in ipairs(boxes) do
    for _ = 1, producers * items / consumers do box:receive() end
  end
end)

local report = ipc.run{trace = true}
for _, name in ipairs{"bounded", "rendezvous"} do
  ipc.expect(report.trace:each_once(name))
  ipc.expect(report.trace:fifo(name))
end
