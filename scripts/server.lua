-- A server process answering requests by source. Clients send requests to
-- the server by name (direct links). Every message's header says who sent
-- it (msg.src), so the server replies to exactly that client; the message
-- type says what is asked.
--
--   ipcscript scripts/server.lua [clients]
local ipc = require("ipc")

local CLIENTS = tonumber(arg[1]) or 3

-- What the server can do, by request type.
local handlers = {
  add = function(a, b) return a + b end,
  upper = function(s) return s:upper() end,
}

ipc.process("server", function()
  local open = CLIENTS
  while open > 0 do
    local request = ipc.receive()
    if request.type == "bye" then
      open = open - 1
    else
      local handler = handlers[request.type]
      if handler then
        ipc.send(request.src, handler(unpack(request.body)), {type = "ok"})
      else
        ipc.send(request.src, "unknown request " .. tostring(request.type), {type = "error"})
      end
    end
  end
  print("served every client")
end)

ipc.process("client", {count = CLIENTS}, function(self)
  -- A remote call: send a request, then wait for the server's reply alone
  -- (other messages, if any came, stay queued).
  local function call(op, ...)
    ipc.send("server", {...}, {type = op})
    local reply = ipc.receive({from = "server"})
    return reply.body, reply.type
  end
  print(("2 + %d = %s"):format(self.index, call("add", 2, self.index)))
  print((call("upper", "hello from " .. self.name)))
  local answer, kind = call("divide", 1, 0)
  print(kind .. ": " .. answer)
  ipc.send("server", nil, {type = "bye"})
end)
