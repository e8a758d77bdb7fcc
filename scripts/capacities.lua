-- Link capacity: how far a sender may run ahead of its receiver.
--
--   capacity = 0   rendezvous: a send returns once a receiver has the message
--   capacity = n   bounded: n messages may wait; the next send blocks
--   (none)         unbounded: a send never blocks
--
-- The producer sends 5 messages into each mailbox as fast as it can; the
-- consumer takes one every 0.1 s. Watch when each send returns.
--
--   ipcscript scripts/capacities.lua
local ipc = require("ipc")

local N, PACE = 5, 0.1

local links = {
  {name = "rendezvous", box = ipc.mailbox("rendezvous", {capacity = 0})},
  {name = "bounded(2)", box = ipc.mailbox("bounded", {capacity = 2})},
  {name = "unbounded", box = ipc.mailbox("unbounded")},
}

ipc.process("producer", function()
  for _, link in ipairs(links) do
    ipc.receive({type = "ready"}) -- the consumer is about to start on it
    local t0, times = ipc.now(), {}
    for i = 1, N do
      link.box:send(i)
      times[i] = ("%.1f"):format(ipc.now() - t0)
    end
    print(("%-10s  sends returned at %s s"):format(link.name, table.concat(times, " ")))
  end
end)

ipc.process("consumer", function()
  for _, link in ipairs(links) do
    ipc.send("producer", nil, {type = "ready"})
    for _ = 1, N do
      ipc.sleep(PACE)
      link.box:receive()
    end
  end
end)
