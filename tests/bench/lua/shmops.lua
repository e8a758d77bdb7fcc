-- Operations on shared memory from WORKERS processes at once. The Lua side
-- of peers/c/shmops.c and peers/py/shmops.py.
--
--   ipcscript run --no-prefix --quiet shmops.lua -- add|mutex WORKERS N
--
-- add: mem:add("i64", 0, 1), an atomic add on one shared 64-bit counter.
-- mutex: an m:lock() / m:unlock() pair of one ipc.mutex.
-- N operations in all, N/WORKERS per worker; the coordinator releases every
-- worker at once and times until all are done.
-- Prints {"ops_per_s":..., "ops": N, "secs": ...}.
local ipc = require("ipc")

local args = arg or {}
local mode, workers, n = args[1], tonumber(args[2]), tonumber(args[3])
assert((mode == "add" or mode == "mutex") and workers and n, "usage: shmops.lua add|mutex WORKERS N")
local per = math.floor(n / workers)
n = per * workers

local mem = ipc.shm("counter", 8)
local mu = ipc.mutex("mu")

ipc.process("worker", {count = workers}, function()
  ipc.send("coord", true, {type = "ready"})
  ipc.receive({from = "coord", type = "go"})
  if mode == "add" then
    for _ = 1, per do
      mem:add("i64", 0, 1)
    end
  else
    for _ = 1, per do
      mu:lock()
      mu:unlock()
    end
  end
  ipc.send("coord", true, {type = "done"})
end)

ipc.process("coord", function()
  for _ = 1, workers do
    ipc.receive({type = "ready"})
  end
  local t0 = ipc.now()
  for i = 1, workers do
    ipc.send("worker." .. i, true, {type = "go"})
  end
  for _ = 1, workers do
    ipc.receive({type = "done"})
  end
  local secs = ipc.now() - t0
  local ok = mode ~= "add" or mem:get("i64", 0) == n
  print(string.format('{"ops_per_s":%.0f,"ops":%d,"secs":%.6f,"ok":%s}',
    n / secs, n, secs, tostring(ok)))
end)

ipc.run()
