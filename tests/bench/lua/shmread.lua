-- mem:read of BYTES bytes from ipc.shm, N times: the Lua side of
-- `peers/c/floor memcpy BYTES N` (memcpy from a shared mapping).
--
--   ipcscript run --no-prefix --quiet shmread.lua -- BYTES N [changing]
--
-- One process; a tenth of N warms up first. With "changing", one byte of
-- the block is rewritten before every read, so no read finds the bytes of
-- the one before. Prints {"mb_per_s":...}.
local ipc = require("ipc")

local args = arg or {}
local bytes, n, changing = tonumber(args[1]), tonumber(args[2]), args[3] == "changing"
assert(bytes and bytes > 0 and n and n > 0, "usage: shmread.lua BYTES N")

local mem = ipc.shm("block", bytes)

ipc.process("reader", function()
  mem:write(0, string.rep("x", bytes))
  local s
  for _ = 1, math.max(10, math.floor(n / 10)) do
    s = mem:read(0, bytes)
  end
  local t0 = ipc.now()
  if changing then
    for i = 1, n do
      mem:write(0, i % 2 == 0 and "x" or "y")
      s = mem:read(0, bytes)
    end
  else
    for _ = 1, n do
      s = mem:read(0, bytes)
    end
  end
  local secs = ipc.now() - t0
  print(string.format('{"mb_per_s":%.0f,"ops":%d,"secs":%.6f,"ok":%s}',
    bytes * n / secs / 1e6, n, secs, tostring(#s == bytes)))
end)

ipc.run()
