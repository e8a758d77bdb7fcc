-- A server that starts a handler per connection, the most common shape of
-- a real server (inetd, Apache's prefork, Erlang's acceptor + spawn):
-- the server process accepts on a unix socket, spawns a handler process
-- (ipc.spawn) and hands it the accepted connection as its args. The
-- connection's descriptor moves to the handler (SCM_RIGHTS, through the
-- supervisor); the server's copy is closed, so when the handler closes,
-- the client sees the end of the stream.
--
--   ipcscript scripts/conn_server.lua [clients]
local ipc = require("ipc")

local CLIENTS = tonumber(arg[1]) or 3
local LINES = 3

local l = ipc.listen("unix", "echo")

-- One handler per connection: echoes each line in capitals, then says how
-- many it served.
ipc.process("handler", {spawn = true}, function(self)
  local c = self.args.conn
  local n = 0
  for line in c:lines() do
    n = n + 1
    c:write(line:upper() .. "\n")
  end
  c:close()
  ipc.send("main", {handler = self.name, lines = n})
end)

ipc.process("server", function()
  for i = 1, CLIENTS do
    local c = l:accept()
    local h = ipc.spawn("handler", {conn = c})
    ipc.log(string.format("connection %d -> %s", i, h))
  end
end)

ipc.process("client", {count = CLIENTS}, function(self)
  local c = ipc.connect("unix", "echo")
  for i = 1, LINES do
    c:write(string.format("%s line %d\n", self.name, i))
    local reply = c:read("l")
    ipc.expect(reply == string.format("%s LINE %d", self.name, i):upper(), "echoed: " .. tostring(reply))
  end
  c:close()
end)

local report = ipc.run()
local served, handlers = 0, 0
for _ = 1, CLIENTS do
  local m = ipc.receive{timeout = 10}
  if m then
    handlers = handlers + 1
    served = served + m.body.lines
  end
end
print(string.format("%d connections, %d handlers spawned, %d lines echoed; ok %s", CLIENTS, handlers, served, tostring(report.ok)))
