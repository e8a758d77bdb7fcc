-- Sockets: the same calls for a TCP port, a unix socket (a file) and UDP.
-- A listener is bound when it is declared, before any process starts, so
-- its address -- a free port picked by the kernel for "127.0.0.1:0" -- is
-- known to every process. Connections are byte streams (write, read,
-- lines) and also carry whole messages (send, receive).
--
--   ipcscript scripts/sockets.lua
local ipc = require("ipc")

local tcp = ipc.listen("tcp", "127.0.0.1:0")
local unix = ipc.listen("unix", "echo.sock")     -- a file in the run directory
local udp = ipc.listen("udp", "127.0.0.1:0")

ipc.process("server", function()
  -- TCP, as a byte stream: echo each line in capitals until the client closes.
  local c = assert(tcp:accept{timeout = 10})
  for line in c:lines() do c:write(line:upper(), "\n") end
  c:close()

  -- A unix socket, with messages: a table in, a table out.
  local u = assert(unix:accept{timeout = 10})
  local m = assert(u:receive{timeout = 10})
  u:send({sum = m.body[1] + m.body[2]}, {type = "result"})
  u:close()

  -- UDP: one datagram in, one out, to whoever sent it.
  local data, from = assert(udp:recvfrom{timeout = 10})
  udp:sendto(from, "pong:" .. data)
end)

ipc.process("client", function()
  print("tcp " .. tcp.address .. ", unix " .. unix.address .. ", udp " .. udp.address)

  local c = assert(ipc.connect("tcp", tcp.address, {timeout = 10}))
  c:write("hello\n", "sockets\n")
  local a, b = c:read(), c:read()
  print("tcp:  " .. a .. " " .. b)
  ipc.expect(a == "HELLO" and b == "SOCKETS", "echoed in capitals")
  c:close()

  local u = assert(ipc.connect("unix", "echo.sock", {timeout = 10}))
  u:send({20, 22}, {type = "add"})
  local r = assert(u:receive{timeout = 10})
  print(("unix: %s %d from %s"):format(r.type, r.body.sum, r.src))
  ipc.expect(r.body.sum == 42, "20 + 22")
  u:close()

  local d = assert(ipc.connect("udp", udp.address))   -- a connected datagram socket
  d:write("ping")
  local reply = d:read(64, {timeout = 10})
  print("udp:  " .. reply)
  ipc.expect(reply == "pong:ping", "the datagram came back")
end)
