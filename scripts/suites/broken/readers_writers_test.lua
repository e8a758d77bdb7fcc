-- BROKEN twin of ../readers_writers_test.lua: the writers only keep each
-- other out (wmutex) and never take `resource`, so nothing orders a write
-- with any read. In a given run they may not have overlapped; the check
-- fails anyway, because nothing would stop them next time.
-- fails with: exclusive: 
local ipc = require("ipc")

local resource, rmutex = ipc.semaphore("resource", 1), ipc.semaphore("rmutex", 1)
local wmutex = ipc.semaphore("wmutex", 1)
local counts = ipc.shm("counts", 8)
local data = ipc.shm("data", 8)

ipc.process("reader", {count = 3}, function()
  for _ = 1, 8 do
    rmutex:wait()
    local r = counts:get("i32", 0) + 1
    counts:set("i32", 0, r)
    if r == 1 then resource:wait() end
    rmutex:post()

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
    ipc.span("write", function() data:set("i64", 0, data:get("i64", 0) + 1) end)
    wmutex:post()
  end
end)

local report = ipc.run{trace = true}
ipc.expect(report.trace:exclusive("write", "read"))
