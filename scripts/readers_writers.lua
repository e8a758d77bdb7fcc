-- Readers and writers: many readers may read at once, but a writer needs
-- the data to itself. The first reader in locks the writers out and the
-- last reader out lets them in again (the "readers-preference" solution:
-- a steady stream of readers can keep a writer waiting).
--
-- `room` is a semaphore, not a mutex: the reader that empties the room is
-- rarely the one that entered it first, and a mutex may only be unlocked
-- by the process that locked it.
--
--   ipcscript scripts/readers_writers.lua
local ipc = require("ipc")

local room = ipc.semaphore("room", 1)       -- free when no writer and no reader is in
local count = ipc.mutex("readcount")        -- guards the reader count
-- i32 at 0: readers counted in; at 4: readers inside; at 8: writers inside;
-- at 12: violations seen; i64 at 16: the shared data (a version number)
local mem = ipc.shm("state", 24)

local function check(cond)
  if not cond then mem:add("i32", 12, 1) end
end

ipc.process("reader", {count = 4}, function()
  for _ = 1, 50 do
    count:with(function()
      if mem:add("i32", 0, 1) == 1 then room:wait() end   -- first in locks writers out
    end)
    mem:add("i32", 4, 1)
    check(mem:get("i32", 8) == 0)                        -- no writer while reading
    local v = mem:get("i64", 16)                         -- read
    ipc.sleep(0.0005)
    mem:add("i32", 4, -1)
    count:with(function()
      if mem:add("i32", 0, -1) == 0 then room:post() end  -- last out lets them in
    end)
  end
end)

ipc.process("writer", {count = 2}, function()
  for _ = 1, 20 do
    room:wait()
    check(mem:add("i32", 8, 1) == 1 and mem:get("i32", 4) == 0)  -- alone
    mem:set("i64", 16, mem:get("i64", 16) + 1)                   -- write
    ipc.sleep(0.0005)
    mem:add("i32", 8, -1)
    room:post()
  end
end)

ipc.run()
print(("version %d after 40 writes; %d violations"):format(mem:get("i64", 16), mem:get("i32", 12)))
ipc.expect(mem:get("i32", 12) == 0, "writers alone, readers never with a writer")
ipc.expect(mem:get("i64", 16) == 40, "no write was lost")
