-- One-way throughput of 64-byte messages through one mailbox. The Lua side
-- of peers/c/ring.c and peers/py/tput.py.
--
--   ipcscript run --no-prefix --quiet tput.lua -- PRODUCERS CONSUMERS CAPACITY|unbounded N [BYTES]
--
-- BYTES is the body's size (default 64). Consumers receive into a table
-- they own ({into = t}), as a script that cares for speed does.
--
-- N messages in all, N/PRODUCERS from each producer. Each producer ends with
-- one message of type "stop"; a consumer stops at the first it takes (a
-- single consumer: at the last), so every message has been taken when every
-- consumer has stopped. The
-- coordinator releases all workers at once and times until every consumer
-- has said it is done. Prints {"msgs_per_s":..., "ops": N, "secs": ...}.
local ipc = require("ipc")

local args = arg or {}
local producers, consumers = tonumber(args[1]), tonumber(args[2])
local capacity, n = args[3], tonumber(args[4])
local size = tonumber(args[5] or 64)
assert(producers and consumers and capacity and n,
  "usage: tput.lua PRODUCERS CONSUMERS CAPACITY|unbounded N")
assert(producers == consumers or consumers == 1,
  "PRODUCERS must equal CONSUMERS, or CONSUMERS be 1 (a consumer stops after its share of the stop messages)")
local stops = math.floor(producers / consumers)
local body = string.rep("x", size)

local box
if capacity == "unbounded" then
  box = ipc.mailbox("box")
else
  box = ipc.mailbox("box", {capacity = assert(tonumber(capacity), "CAPACITY must be a number")})
end

-- A worker says it is ready and waits for the coordinator's go.
local function arrive()
  ipc.send("coord", true, {type = "ready"})
  ipc.receive({from = "coord", type = "go"})
end

ipc.process("producer", {count = producers}, function(self)
  local mine = math.floor(n / producers)
  if self.index - 1 < n % producers then
    mine = mine + 1
  end
  arrive()
  for _ = 1, mine do
    box:send(body)
  end
  box:send(true, {type = "stop"})
end)

ipc.process("consumer", {count = consumers}, function()
  arrive()
  local got, left = 0, stops
  local into = {into = {}}
  while true do
    if box:receive(into).type == "stop" then
      left = left - 1
      if left == 0 then break end
    else
      got = got + 1
    end
  end
  ipc.send("coord", got, {type = "done"})
end)

ipc.process("coord", function()
  for _ = 1, producers + consumers do
    ipc.receive({type = "ready"})
  end
  local t0 = ipc.now()
  for i = 1, producers do
    ipc.send("producer." .. i, true, {type = "go"})
  end
  for i = 1, consumers do
    ipc.send("consumer." .. i, true, {type = "go"})
  end
  local taken = 0
  for _ = 1, consumers do
    taken = taken + ipc.receive({type = "done"}).body
  end
  local secs = ipc.now() - t0
  print(string.format('{"msgs_per_s":%.0f,"ops":%d,"secs":%.6f,"ok":%s}',
    n / secs, n, secs, tostring(taken == n)))
end)

ipc.run()
