-- mem:read of BYTES bytes from ipc.shm, N times: the Lua side of
-- `peers/c/floor memcpy BYTES N` (memcpy from a shared mapping).
--
--   ipcscript run --no-prefix --quiet shmread.lua -- BYTES N [changing] [strings]
--
-- One process; a tenth of N warms up first. Each read copies the block into
-- one ipc.buffer the process owns (mem:read(0, BYTES, {into = b})), as the C
-- peer memcpys into one buffer, and checks the count; with "strings" each
-- read returns a string instead (a read of the same bytes as the last one
-- returns that string again: a compare, no copy). With "changing", one byte
-- of the block is rewritten before every read, so no read finds the bytes
-- of the one before. Prints {"mb_per_s":...}.
local ipc = require("ipc")

local args = arg or {}
local bytes, n = tonumber(args[1]), tonumber(args[2])
local changing, strings = false, false
for i = 3, #args do
  changing = changing or args[i] == "changing"
  strings = strings or args[i] == "strings"
end
assert(bytes and bytes > 0 and n and n > 0, "usage: shmread.lua BYTES N [changing] [strings]")

local mem = ipc.shm("block", bytes)

ipc.process("reader", function()
  mem:write(0, string.rep("x", bytes))
  local b = ipc.buffer(bytes)
  local into = {into = b}
  -- read() copies the block out and returns the count read.
  local read, s
  if strings then
    read = function()
      s = mem:read(0, bytes)
      return #s
    end
  else
    read = function()
      return mem:read(0, bytes, into)
    end
  end
  for _ = 1, math.max(10, math.floor(n / 10)) do
    read()
  end
  local got = 0
  local t0 = ipc.now()
  if changing then
    for i = 1, n do
      mem:write(0, i % 2 == 0 and "x" or "y")
      got = got + read()
    end
  else
    for _ = 1, n do
      got = got + read()
    end
  end
  local secs = ipc.now() - t0
  local first = strings and s:byte(1) or b:byte(1)
  local want = 120 -- "x"
  if changing and n % 2 == 1 then
    want = 121 -- "y", written before the last read
  end
  local ok = got == bytes * n and first == want
  print(string.format('{"mb_per_s":%.0f,"ops":%d,"secs":%.6f,"ok":%s}',
    bytes * n / secs / 1e6, n, secs, tostring(ok)))
end)

ipc.run()
