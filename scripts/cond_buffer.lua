-- A bounded buffer as a Mesa monitor: one mutex, two condition variables
-- (ipc.cond), the state in named shared variables (ipc.shared).
--
-- Mesa semantics (pthreads, Java): a signalled process does not run at
-- once; it competes for the mutex again, and another process may get
-- there first and change the state. So each wait sits in a `while` loop
-- that re-checks the condition. (For Hoare semantics, where `if` is
-- enough, see hoare_monitor.lua.)
--
--   ipcscript scripts/cond_buffer.lua [items per producer]
local ipc = require("ipc")

local SLOTS, PRODUCERS, CONSUMERS = 4, 3, 2
local items = tonumber(arg[1]) or 200

local m = ipc.mutex("monitor")
local not_full = ipc.cond("not_full")
local not_empty = ipc.cond("not_empty")
local b = ipc.shared("buffer", {
  ring = {"i64", SLOTS}, head = "i32", count = "i32",
  producers_done = "i32", sum = "i64", peak = "i32",   -- all start at 0
})

ipc.process("producer", {count = PRODUCERS}, function(self)
  for i = 1, items do
    m:lock()
    while b.count == SLOTS do not_full:wait(m) end
    b.ring[(b.head + b.count) % SLOTS + 1] = self.index * 100000 + i
    b.count = b.count + 1
    b:max("peak", b.count)
    not_empty:signal()
    m:unlock()
  end
  m:lock()
  b.producers_done = b.producers_done + 1
  not_empty:broadcast()            -- consumers waiting for an item that will never come
  m:unlock()
end)

ipc.process("consumer", {count = CONSUMERS}, function(self)
  local n = 0
  while true do
    m:lock()
    while b.count == 0 and b.producers_done < PRODUCERS do not_empty:wait(m) end
    if b.count == 0 then m:unlock(); break end   -- drained, and no producer is left
    local x = b.ring[b.head + 1]
    b.head = (b.head + 1) % SLOTS
    b.count = b.count - 1
    not_full:signal()
    m:unlock()
    b:add("sum", x)
    n = n + 1
  end
  print(string.format("consumed %d items", n))
end)

local report = ipc.run()
local want = 0
for p = 1, PRODUCERS do for i = 1, items do want = want + p * 100000 + i end end
ipc.expect(b.sum == want, "every item consumed exactly once")
ipc.expect(b.peak <= SLOTS, "never more than SLOTS items buffered")
print(string.format("%d items, peak %d of %d slots, sum %s", PRODUCERS * items, b.peak, SLOTS,
  b.sum == want and "right" or "WRONG"))
