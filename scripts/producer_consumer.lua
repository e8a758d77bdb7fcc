-- The bounded buffer (producer/consumer) with message passing: a mailbox of
-- capacity 4 is the buffer. A producer's send blocks while 4 items wait in
-- it; a consumer's receive blocks while it is empty. No locks and no
-- semaphores: the mailbox does the synchronization.
--
--   ipcscript scripts/producer_consumer.lua [items per producer]
local ipc = require("ipc")

local ITEMS = tonumber(arg[1]) or 20
local PRODUCERS, CONSUMERS = 2, 3
local buffer = ipc.mailbox("buffer", {capacity = 4})

ipc.process("producer", {count = PRODUCERS}, function()
  local waited = 0
  for i = 1, ITEMS do
    -- try without blocking first, only to count how often the buffer is full
    if not buffer:send(i, {block = false}) then
      waited = waited + 1
      buffer:send(i) -- blocks until a consumer makes room
    end
  end
  print(("found the buffer full for %d of %d items"):format(waited, ITEMS))
  ipc.send("closer", "done")
end)

-- When every producer is done, close the buffer: the consumers take what
-- is left, then their receive says "closed".
ipc.process("closer", function()
  for _ = 1, PRODUCERS do
    ipc.receive()
  end
  buffer:close()
end)

ipc.process("consumer", {count = CONSUMERS}, function()
  local n, sum = 0, 0
  while true do
    local item, err = buffer:receive()
    if not item then break end -- err == "closed": closed and drained
    n, sum = n + 1, sum + item.body
    ipc.sleep(0.005) -- consuming takes time, so the buffer fills up
  end
  ipc.send("main", {n = n, sum = sum})
end)

ipc.run()

local n, sum = 0, 0
for _ = 1, CONSUMERS do
  local report = ipc.receive().body
  n, sum = n + report.n, sum + report.sum
end
print(("%d items produced, %d consumed, sum %d"):format(PRODUCERS * ITEMS, n, sum))
ipc.expect(n == PRODUCERS * ITEMS and sum == PRODUCERS * ITEMS * (ITEMS + 1) / 2,
  "every item consumed exactly once")
