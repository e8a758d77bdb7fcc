-- Round trip of a 64-byte message between two processes: ping sends, pong
-- echoes it back, ping measures. The Lua side of peers/c/pingpong.c and
-- peers/py/pingpong.py.
--
--   ipcscript run --no-prefix --quiet pingpong.lua -- link|mailbox|pipe|unix|mq|sem N
--
-- link: direct links (ipc.send / ipc.receive). mailbox: two mailboxes, one
-- per direction. pipe: two pipes with from/to. unix: ipc.listen("unix") and
-- ipc.connect, raw bytes. mq: two kernel message queues (capacity 10,
-- msgsize 64). sem: the 64 bytes in ipc.shm and two semaphores handing the
-- turn over. Prints {"ns_per_op": ns per round trip, "ops": N, "secs": ...}.
local ipc = require("ipc")

local args = arg or {}
local mode, n = args[1], tonumber(args[2])
local usage = "usage: pingpong.lua link|mailbox|pipe|unix|mq|sem N"
assert(n and n > 0, usage)
local warm = math.max(10, math.floor(n / 10))
local body = string.rep("x", 64)

-- Reads exactly k bytes from a stream.
local function read_exact(s, k)
  local data = s:read(k)
  assert(data, "unexpected end of stream")
  while #data < k do
    data = data .. assert(s:read(k - #data), "unexpected end of stream")
  end
  return data
end

-- Each mode declares its objects (at the top level, in every process) and
-- returns two functions run in the process bodies: ping() and pong() each
-- return a loop(k) doing k round trips; ping's returns the last reply.
local modes = {}

-- Replies are received into a table each side owns ({into = t}): no
-- message table per hop.
local into = {into = {}}

function modes.link()
  return function()
    return function(k)
      local m
      for _ = 1, k do
        ipc.send("pong", body)
        m = ipc.receive(into)
      end
      return m.body
    end
  end, function()
    return function(k)
      for _ = 1, k do
        ipc.send("ping", ipc.receive(into).body)
      end
    end
  end
end

function modes.mailbox()
  local to_pong, to_ping = ipc.mailbox("to_pong"), ipc.mailbox("to_ping")
  return function()
    return function(k)
      local m
      for _ = 1, k do
        to_pong:send(body)
        m = to_ping:receive(into)
      end
      return m.body
    end
  end, function()
    return function(k)
      for _ = 1, k do
        to_ping:send(to_pong:receive(into).body)
      end
    end
  end
end

function modes.pipe()
  local to_pong = ipc.pipe({from = "ping", to = "pong"})
  local to_ping = ipc.pipe({from = "pong", to = "ping"})
  return function()
    return function(k)
      local m
      for _ = 1, k do
        to_pong:write(body)
        m = read_exact(to_ping, 64)
      end
      return m
    end
  end, function()
    return function(k)
      for _ = 1, k do
        to_ping:write(read_exact(to_pong, 64))
      end
    end
  end
end

function modes.unix()
  local l = ipc.listen("unix", "pingpong.sock")
  return function()
    local c = ipc.connect("unix", l.address)
    return function(k)
      local m
      for _ = 1, k do
        c:write(body)
        m = read_exact(c, 64)
      end
      return m
    end
  end, function()
    local c = l:accept()
    return function(k)
      for _ = 1, k do
        c:write(read_exact(c, 64))
      end
    end
  end
end

function modes.mq()
  local to_pong = ipc.mqueue("to_pong", {capacity = 10, msgsize = 64})
  local to_ping = ipc.mqueue("to_ping", {capacity = 10, msgsize = 64})
  return function()
    return function(k)
      local m
      for _ = 1, k do
        to_pong:send(body)
        m = to_ping:receive()
      end
      return m
    end
  end, function()
    return function(k)
      for _ = 1, k do
        to_ping:send((to_pong:receive()))
      end
    end
  end
end

function modes.sem()
  local mem = ipc.shm("message", 64)
  local to_pong, to_ping = ipc.semaphore("to_pong", 0), ipc.semaphore("to_ping", 0)
  return function()
    return function(k)
      local m
      for _ = 1, k do
        mem:write(0, body)
        to_pong:post()
        to_ping:wait()
        m = mem:read(0, 64)
      end
      return m
    end
  end, function()
    return function(k)
      for _ = 1, k do
        to_pong:wait()
        mem:write(0, mem:read(0, 64))
        to_ping:post()
      end
    end
  end
end

assert(modes[mode], usage)
local ping, pong = modes[mode]()

ipc.process("ping", function()
  local loop = ping()
  loop(warm)
  local t0 = ipc.now()
  local back = loop(n)
  local secs = ipc.now() - t0
  print(string.format('{"ns_per_op":%.1f,"ops":%d,"secs":%.6f,"ok":%s}',
    secs * 1e9 / n, n, secs, tostring(back == body)))
end)

ipc.process("pong", function()
  pong()(warm + n)
end)

ipc.run()
