-- Start N trivial processes and wait for all of them: the cost per process.
-- The Lua side of peers/c/launch.c and peers/py/launch.py.
--
--   ipcscript run --no-prefix --quiet launch.lua -- N
--
-- The time is taken by the parent around ipc.run(), which launches every
-- process (a re-exec of the binary each) and waits for all of them.
-- Prints {"ns_per_op": ns per process, "ops": N, "secs": ...}.
local ipc = require("ipc")

local args = arg or {}
local n = tonumber(args[1])
assert(n and n > 0, "usage: launch.lua N")

ipc.process("nothing", {count = n}, function() end)

local t0 = ipc.now()
local report = ipc.run()
local secs = ipc.now() - t0
print(string.format('{"ns_per_op":%.0f,"ops":%d,"secs":%.6f,"ok":%s}',
  secs * 1e9 / n, n, secs, tostring(report.ok)))
