-- K idle Lua processes, for peak RSS: each sleeps MS milliseconds. The
-- harness reads VmHWM from /proc/PID/status of every process of the run
-- while they sleep; this script only says which processes are the workers.
-- The Lua side of peers/c/idle.c and peers/py/idle.py.
--
--   ipcscript run --no-prefix --quiet idle.lua -- K MS
--
-- Prints {"pids": [worker pids], "ops": K}.
local ipc = require("ipc")

local args = arg or {}
local k, ms = tonumber(args[1]), tonumber(args[2])
assert(k and ms, "usage: idle.lua K MS")

ipc.process("idle", {count = k}, function()
  ipc.sleep(ms / 1000)
end)

local report = ipc.run()
local pids = {}
for _, p in pairs(report.processes) do
  pids[#pids + 1] = string.format("%d", p.pid)
end
print(string.format('{"pids":[%s],"ops":%d,"ok":%s}', table.concat(pids, ","), k, tostring(report.ok)))
