-- Bulk bytes from one process to another in CHUNK-byte writes. The Lua side
-- of peers/c/bulk.c and peers/py/bulk.py.
--
--   ipcscript run --no-prefix --quiet bulk.lua -- pipe|unix|shm TOTAL_BYTES CHUNK [strings]
--
-- pipe: one pipe with from/to. unix: ipc.listen("unix") and ipc.connect.
-- shm: a ring of 16 slots of CHUNK bytes in ipc.shm; the writer copies each
-- chunk in (mem:write), the reader copies it out (mem:read), and two
-- semaphores count the free and filled slots. The reader reads each chunk
-- into one ipc.buffer it owns (read(n, {into = b})), as the C peer read(2)s
-- or memcpys into one malloc'd buffer, and checks the count; with
-- "strings" it reads each chunk as a new string instead. The reader takes
-- the first chunk untimed (so both sides are running), then times the rest.
-- Prints {"mb_per_s": 1e6 bytes per second, "bytes": timed bytes, "secs": ...}.
local ipc = require("ipc")

local args = arg or {}
local mode, total, chunk = args[1], tonumber(args[2]), tonumber(args[3])
local strings = args[4] == "strings"
local usage = "usage: bulk.lua pipe|unix|shm TOTAL_BYTES CHUNK [strings]"
assert(total and chunk, usage)
local chunks = math.floor(total / chunk)
assert(chunks >= 2, "TOTAL_BYTES must hold at least 2 chunks")
local SLOTS = 16

-- Each mode declares its objects and returns writer() and reader(): the
-- writer writes every chunk; the reader returns a function that reads the
-- i-th chunk (0-based) and returns the number of bytes read, and a function
-- that returns the last byte read.
local modes = {}

-- The reader's memory: one buffer (and the options that name it), or the
-- last string read.
local buf, into, last = nil, nil, ""
local function last_byte()
  if strings then
    return last:byte(-1)
  end
  return buf:byte(-1)
end

-- Reads chunk bytes from a stream (fewer only at its end) into buf, or as
-- strings; returns the count.
local function read_chunk(s)
  if not strings then
    return s:read(chunk, into) or 0
  end
  local parts, got = {}, 0
  while got < chunk do
    local part = s:read(chunk - got)
    if not part or #part == 0 then
      break
    end
    parts[#parts + 1] = part
    got = got + #part
  end
  last = #parts == 1 and parts[1] or table.concat(parts)
  return #last
end

local function write_all(s)
  local data = string.rep("x", chunk)
  for _ = 1, chunks do
    s:write(data)
  end
  s:close()
end

function modes.pipe()
  local p = ipc.pipe({from = "writer", to = "reader"})
  return function()
    write_all(p)
  end, function()
    return function()
      return read_chunk(p)
    end
  end
end

function modes.unix()
  local l = ipc.listen("unix", "bulk.sock")
  return function()
    write_all(ipc.connect("unix", l.address))
  end, function()
    local c = l:accept()
    return function()
      return read_chunk(c)
    end
  end
end

function modes.shm()
  local mem = ipc.shm("ring", SLOTS * chunk)
  local free, used = ipc.semaphore("free", SLOTS), ipc.semaphore("used", 0)
  return function()
    local data = string.rep("x", chunk)
    for i = 0, chunks - 1 do
      free:wait()
      mem:write((i % SLOTS) * chunk, data)
      used:post()
    end
  end, function()
    return function(i)
      used:wait()
      local n
      if strings then
        last = mem:read((i % SLOTS) * chunk, chunk)
        n = #last
      else
        n = mem:read((i % SLOTS) * chunk, chunk, into)
      end
      free:post()
      return n
    end
  end
end

assert(modes[mode], usage)
local writer, reader = modes[mode]()

ipc.process("writer", writer)

ipc.process("reader", function()
  if not strings then
    buf = ipc.buffer(chunk)
    into = {into = buf}
  end
  local read = reader()
  local first = read(0)
  local t0 = ipc.now()
  local got = 0
  for i = 1, chunks - 1 do
    got = got + read(i)
  end
  local secs = ipc.now() - t0
  local ok = first == chunk and got == (chunks - 1) * chunk and last_byte() == 120 -- "x"
  print(string.format('{"mb_per_s":%.1f,"bytes":%d,"secs":%.6f,"ok":%s}',
    got / secs / 1e6, got, secs, tostring(ok)))
end)

ipc.run()
