-- The bounded buffer (producer/consumer) with semaphores and shared memory.
-- A ring of `slots` numbers in shared memory; `empty` counts free slots,
-- `full` counts filled ones, and a mutex guards the ring's indexes so that
-- two producers (or two consumers) never use the same slot.
--
--   producer: empty:wait()  lock  put  unlock  full:post()
--   consumer: full:wait()   lock  take unlock  empty:post()
--
-- A producer sleeps while the buffer is full, a consumer while it is empty.
--
--   ipcscript scripts/bounded_buffer.lua [items per producer]
local ipc = require("ipc")

local slots, producers, consumers = 4, 3, 2
local items = tonumber(arg[1]) or 200
local total = producers * items

local empty = ipc.semaphore("empty", slots)
local full = ipc.semaphore("full", 0)
local lock = ipc.mutex("ring")
-- layout: i64 slots[4] at 0; i32 in at 32, out at 36; i64 consumed sum at 40;
-- i32 taken at 48 (how many items consumers claimed, to know when to stop)
local ring = ipc.shm("ring", 56)
local IN, OUT, SUM, TAKEN = 32, 36, 40, 48

ipc.process("producer", {count = producers}, function(self)
  for i = 1, items do
    local item = self.index * 100000 + i
    empty:wait()
    lock:with(function()
      local at = ring:get("i32", IN)
      ring:set("i64", 8 * at, item)
      ring:set("i32", IN, (at + 1) % slots)
    end)
    full:post()
  end
end)

ipc.process("consumer", {count = consumers}, function(self)
  local got = 0
  -- claim an item before waiting for it, so the consumers together take
  -- exactly `total` and none waits for an item that never comes
  while ring:add("i32", TAKEN, 1) <= total do
    full:wait()
    local item = lock:with(function()
      local at = ring:get("i32", OUT)
      ring:set("i32", OUT, (at + 1) % slots)
      return ring:get("i64", 8 * at)
    end)
    empty:post()
    ring:add("i64", SUM, item)
    got = got + 1
  end
  print("consumed " .. got .. " items")
end)

ipc.run()
-- every item consumed exactly once: the sums agree
local want = 0
for p = 1, producers do want = want + p * 100000 * items + items * (items + 1) / 2 end
print(("produced %d items, consumed sum %d, expected %d"):format(total, ring:get("i64", SUM), want))
ipc.expect(ring:get("i64", SUM) == want, "every item consumed exactly once")
ipc.expect(empty:value() == slots and full:value() == 0, "the buffer ends empty")
