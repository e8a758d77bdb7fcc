-- BROKEN twin of ../producer_consumer_shm_test.lua: the lock around the
-- ring's indexes is gone. `empty` and `full` alone do not keep two
-- producers apart: both may read the same `in` index. Whether they
-- actually collide depends on timing; the check does not: nothing orders
-- one producer's put before the other's.
--
-- Everyone goes on only once both producers have put their first item
-- (`ready`, then `go`), so the first two puts are never ordered through a
-- consumer, whichever producer starts first.
-- fails with: exclusive: producer\.\d and producer\.\d were in span "ring"
local ipc = require("ipc")

local slots, producers, consumers, items = 3, 2, 2, 12
local empty = ipc.semaphore("empty", slots)
local full = ipc.semaphore("full", 0)
local ready, go = ipc.semaphore("ready", 0), ipc.semaphore("go", 0)
local ring = ipc.shm("ring", 8 * slots + 8)
local IN, OUT = 8 * slots, 8 * slots + 4

local function put(_, item)
  local at = ring:get("i32", IN)
  ring:set("i64", 8 * at, item)
  ring:set("i32", IN, (at + 1) % slots)
end

local function take()
  local at = ring:get("i32", OUT)
  ring:set("i32", OUT, (at + 1) % slots)
  return ring:get("i64", 8 * at)
end

ipc.process("producer", {count = producers}, function(self)
  for i = 1, items do
    empty:wait()
    ipc.span("ring", put, "put", self.index * 1000 + i)
    full:post()
    if i == 1 then
      ready:post()
      go:wait()
    end
  end
end)

ipc.process("consumer", {count = consumers}, function(self)
  if self.index == 1 then
    for _ = 1, producers do ready:wait() end
    go:post(producers + consumers - 1)
  else
    go:wait()
  end
  for _ = 1, producers * items / consumers do
    full:wait()
    ipc.span("ring", take, "take")
    empty:post()
  end
end)

local report = ipc.run{trace = true}
ipc.expect(report.trace:exclusive("ring"))
