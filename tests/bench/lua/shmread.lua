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
  local s
  for _ = 1, math.max(10, math.floor(n / 10)) do
    if strings then
      s = mem:read(0, bytes)
    else
      mem:read(0, bytes, into)
    end
  end
  -- Each loop adds up the counts read (C keeps each copy by reading a
  -- byte of it); "changing" alternates the byte it writes ("y", "x", ...).
  local got, odd = 0, true
  local t0 = ipc.now()
  if strings and changing then
    for _ = 1, n do
      mem:write(0, odd and "y" or "x")
      odd = not odd
      s = mem:read(0, bytes)
      got = got + #s
    end
  elseif strings then
    for _ = 1, n do
      s = mem:read(0, bytes)
      got = got + #s
    end
  elseif changing then
    for _ = 1, n do
      mem:write(0, odd and "y" or "x")
      odd = not odd
      got = got + mem:read(0, bytes, into)
    end
  else
    for _ = 1, n do
      got = got + mem:read(0, bytes, into)
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
