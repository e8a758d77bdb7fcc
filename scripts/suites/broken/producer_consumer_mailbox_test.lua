-- BROKEN twin of ../producer_consumer_mailbox_test.lua: the consumers
-- stop one message short (an off-by-one in their loop), so a message sent
-- to the unbounded mailbox is never received, whatever the timing.
-- fails with: each_once: message producer\.2 no\. \d+ sent to "jobs" was never received
local ipc = require("ipc")

local producers, consumers, items = 2, 1, 10
local box = ipc.mailbox("jobs")

ipc.process("producer", {count = producers}, function(self)
  for i = 1, items do box:send({self.index, i}) end
end)

ipc.process("consumer", {count = consumers}, function()
  -- receives producer.1's messages, then producer.2's, but one too few
  for _ = 1, items do box:receive{from = "producer.1"} end
  for _ = 1, items - 1 do box:receive{from = "producer.2"} end
end)

local report = ipc.run{trace = true}
ipc.expect(report.trace:each_once("jobs"))
ipc.expect(report.trace:fifo("jobs"))
