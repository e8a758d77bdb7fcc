-- Link capacity: how far a sender may run ahead of its receiver.
--
--   capacity = 0   rendezvous: a send returns once a receiver has the message
--   capacity = n   bounded: n messages may wait; the next send blocks
--   (none)         unbounded: a send never blocks
--
-- The producer sends 5 messages into each mailbox. The consumer writes in
-- shared memory how many receives it has begun (before each receive), so
-- when a send returns the producer can see what the consumer had done by
-- then: the order of events, not the clock, shows what capacity means.
--
--   ipcscript scripts/capacities.lua
local ipc = require("ipc")

local N = 5
local links = {
  {name = "rendezvous", box = ipc.mailbox("rendezvous", {capacity = 0})},
  {name = "bounded(2)", box = ipc.mailbox("bounded", {capacity = 2})},
  {name = "unbounded", box = ipc.mailbox("unbounded")},
}
-- begun: for link k, an i64 at offset 8*(k-1): receives the consumer has begun.
local begun = ipc.shm("begun", 8 * #links)
for k, link in ipairs(links) do link.counter = 8 * (k - 1) end

-- send sends i on link and returns how many receives the consumer had begun
-- on that link when the send returned.
local function send(link, i)
  assert(link.box:send(i))
  return begun:get("i64", link.counter)
end

ipc.process("producer", function()
  -- Rendezvous: the consumer is receiving. Each send returns only after the
  -- consumer began the receive that takes it.
  local rv = links[1]
  ipc.send("consumer", nil, {type = "go"})
  local after = {}
  for i = 1, N do
    after[#after + 1] = send(rv, i) >= i and "yes" or "NO"
  end
  print(("%-10s  send i returned after receive i began: %s"):format(rv.name, table.concat(after, " ")))
  ipc.receive({type = "done"})

  -- Bounded(2): the consumer waits. Two sends return at once; a third finds
  -- the link full. Once the consumer receives, each send waits for room.
  local bd = links[2]
  local early = {}
  for i = 1, 2 do
    early[#early + 1] = send(bd, i) == 0 and "yes" or "NO"
  end
  local _, err = bd.box:send(3, {block = false})
  ipc.send("consumer", nil, {type = "go"})
  after = {}
  for i = 3, N do
    after[#after + 1] = send(bd, i) >= i - 2 and "yes" or "NO"
  end
  print(("%-10s  sends 1-2 returned before any receive: %s"):format(bd.name, table.concat(early, " ")))
  print(("%-10s  send 3 without blocking: %s"):format(bd.name, tostring(err)))
  print(("%-10s  sends 3-5 returned after receive i-2 began: %s"):format(bd.name, table.concat(after, " ")))
  ipc.receive({type = "done"})

  -- Unbounded: the consumer waits until every send has returned.
  local ub = links[3]
  early = {}
  for i = 1, N do
    early[#early + 1] = send(ub, i) == 0 and "yes" or "NO"
  end
  ipc.send("consumer", nil, {type = "go"})
  print(("%-10s  sends 1-5 returned before any receive: %s"):format(ub.name, table.concat(early, " ")))
  ipc.receive({type = "done"})
end)

ipc.process("consumer", function()
  for _, link in ipairs(links) do
    ipc.receive({type = "go"})
    for i = 1, N do
      begun:set("i64", link.counter, i)
      local msg = link.box:receive()
      ipc.expect(msg.body == i, link.name .. ": messages arrive in the order sent")
    end
    ipc.send("producer", nil, {type = "done"})
  end
end)
