-- A shared-memory-heavy loop, for what --race costs (issue 11: at most
-- 10x). One worker does N get+set pairs on a counter; the figure is taken
-- by the parent around the whole ipc.run(), so under --race it includes
-- recording every access, merging the recording and running the race
-- detector over it (and, in both rows alike, launching the worker).
--
--   ipcscript run [--race] --no-prefix --quiet shmrace.lua -- N
--
-- Prints {"ops_per_s":..., "ops": N, "secs": ...}.
local ipc = require("ipc")

local n = tonumber((arg or {})[1])
assert(n, "usage: shmrace.lua N")
local mem = ipc.shm("counter", 8)

ipc.process("worker", function()
  for _ = 1, n do
    mem:set("i64", 0, mem:get("i64", 0) + 1)
  end
end)

local t0 = ipc.now()
local report = ipc.run()
local secs = ipc.now() - t0
print(string.format('{"ops_per_s":%.0f,"ops":%d,"secs":%.6f,"ok":%s}',
  n / secs, n, secs, tostring(report.ok and mem:get("i64", 0) == n)))
