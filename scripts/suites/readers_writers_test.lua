-- Readers and writers with writer priority (Courtois, Heymans and Parnas'
-- second solution): once a writer is waiting, no new reader gets in.
--
--   readTry  : a writer holds it while writers are waiting or writing,
--              which keeps new readers out
--   resource : held by the readers as a group, or by one writer
--   rmutex, wmutex guard the reader and writer counts in shared memory
--
-- Semaphores, not mutexes: the last reader out releases `resource`, and
-- that is rarely the reader that took it.
--
-- Checked on the recorded run: a "write" span never overlaps, and is
-- always ordered by happens-before with, every other "write" and "read"
-- span (readers may share).
local ipc = require("ipc")

local readTry, resource = ipc.semaphore("readTry", 1), ipc.semaphore("resource", 1)
local rmutex, wmutex = ipc.semaphore("rmutex", 1), ipc.semaphore("wmutex", 1)
local counts = ipc.shm("counts", 8) -- i32 readers at 0, i32 writers at 4
local data = ipc.shm("data", 8)

ipc.process("reader", {count = 3}, function()
  for _ = 1, 8 do
    readTry:wait()
    rmutex:wait()
    local r = counts:get("i32", 0) + 1
    counts:set("i32", 0, r)
    if r == 1 then resource:wait() end
    rmutex:post()
    readTry:post()

    ipc.span("read", function() return data:get("i64", 0) end)

    rmutex:wait()
    r = counts:get("i32", 0) - 1
    counts:set("i32", 0, r)
    if r == 0 then resource:post() end
    rmutex:post()
  end
end)

ipc.process("writer", {count = 2}, function()
  for _ = 1, 5 do
    wmutex:wait()
    local w = counts:get("i32", 4) + 1
    counts:set("i32", 4, w)
    if w == 1 then readTry:wait() end
    wmutex:post()

    resource:wait()
    ipc.span("write", function() data:set("i64", 0, data:get("i64", 0) + 1) end)
    resource:post()

    wmutex:wait()
    w = counts:get("i32", 4) - 1
    counts:set("i32", 4, w)
    if w == 0 then readTry:post() end
    wmutex:post()
  end
end)

local report = ipc.run{trace = true}
ipc.expect(report.trace:exclusive("write", "read"))
