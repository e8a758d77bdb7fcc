-- Client/server over TCP: one server process serves several clients at
-- once. It waits with ipc.select on its listener and on every open
-- connection, so a slow client never holds up the others. Requests and
-- replies are messages: a type and a body (any Lua value), framed on the
-- byte stream.
--
--   ipcscript scripts/client_server.lua [clients]
local ipc = require("ipc")

local clients = tonumber(arg[1]) or 4
local requests = 5
local server = ipc.listen("tcp", "127.0.0.1:0")

-- the service: a tiny calculator
local ops = {
  add = function(a, b) return a + b end,
  mul = function(a, b) return a * b end,
}

ipc.process("server", function()
  local conns, served, open = {}, 0, 0
  repeat
    local list = {server}
    for c in pairs(conns) do list[#list + 1] = c end
    local ready = assert(ipc.select(list, {timeout = 10}))
    if ready == server then
      local c = server:accept{block = false}     -- another process could take it first
      if c then conns[c], open = true, open + 1 end
    else
      local m, err = ready:receive()
      if m then
        local f = ops[m.type]
        ready:send(f and f(m.body[1], m.body[2]) or "unknown operation", {type = "reply"})
        served = served + 1
      elseif err == "closed" then                -- the client hung up
        ready:close()
        conns[ready], open = nil, open - 1
      end
    end
  until served == clients * requests and open == 0
  print(("served %d requests from %d clients"):format(served, clients))
end)

ipc.process("client", {count = clients}, function(self)
  local c = assert(ipc.connect("tcp", server.address, {timeout = 10}))
  local ok = 0
  for i = 1, requests do
    local op = i % 2 == 0 and "mul" or "add"
    c:send({self.index, i}, {type = op})
    local r = assert(c:receive{timeout = 10})
    if r.body == ops[op](self.index, i) then ok = ok + 1 end
  end
  c:close()
  print(("%d of %d answers right"):format(ok, requests))
  ipc.expect(ok == requests, "every answer is right")
end)
