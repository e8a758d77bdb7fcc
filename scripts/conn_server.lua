-- A server that starts a handler per connection, the most common shape of
-- a real server (inetd, Apache's prefork, Erlang's acceptor + spawn):
-- the run's main body (ipc.run{main = ...}) accepts on a unix socket,
-- spawns a handler process (ipc.spawn) and hands it the accepted
-- connection as its args. The connection's descriptor moves to the
-- handler (SCM_RIGHTS, through the supervisor); the server's copy is
-- closed, so when the handler closes, the client sees the end of the
-- stream. Each handler reports to main when it is done; main collects the
-- reports as it goes, so an ended handler's slot is free again and the
-- server serves any number of connections under --max-procs (when a spawn
-- finds the cap reached, main waits for a handler to finish and retries).
--
--   ipcscript scripts/conn_server.lua [clients] [connections per client]
local ipc = require("ipc")

local CLIENTS = tonumber(arg[1]) or 3
local EACH = tonumber(arg[2]) or 1
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
  ipc.send("main", {handler = self.name, lines = n}, {type = "done"})
end)

ipc.process("client", {count = CLIENTS}, function(self)
  for k = 1, EACH do
    local c = ipc.connect("unix", "echo")
    for i = 1, LINES do
      c:write(string.format("%s/%d line %d\n", self.name, k, i))
      local reply = c:read("l")
      ipc.expect(reply == string.format("%s/%d LINE %d", self.name, k, i):upper(), "echoed: " .. tostring(reply))
    end
    c:close()
  end
end)

local served, handlers = 0, 0
local function collect(block) -- the handlers' reports
  repeat
    local m = ipc.receive{type = "done", block = block}
    if m then
      handlers = handlers + 1
      served = served + m.body.lines
    end
  until not m or block
end

local report = ipc.run{main = function()
  local live = {} -- handlers spawned and not yet waited for, oldest first
  for i = 1, CLIENTS * EACH do
    local c = l:accept()
    local ok, h = pcall(ipc.spawn, "handler", {conn = c})
    while not ok and h:find("--max-procs", 1, true) and #live > 0 do
      -- At the cap: once the oldest handler has ended and its report is
      -- received here, its slot is free again.
      ipc.wait(table.remove(live, 1))
      collect(false)
      ok, h = pcall(ipc.spawn, "handler", {conn = c})
    end
    assert(ok, h)
    live[#live + 1] = h
    if EACH == 1 then ipc.log(string.format("connection %d -> %s", i, h)) end
    collect(false)
  end
  while handlers < CLIENTS * EACH do collect(true) end
  print(string.format("%d connections, %d handlers spawned, %d lines echoed", CLIENTS * EACH, handlers, served))
end}
print("ok " .. tostring(report.ok))
