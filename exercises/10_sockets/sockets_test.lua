-- Exercise 10: sockets.
--
-- A socket connects processes that share nothing but an address; they
-- could be on different machines (tcp) or find each other by a path
-- (unix). ipc.listen binds when declared, so l.address is known to every
-- process. On a connection, c:send and c:receive carry framed messages:
-- the same tables as mailboxes.
--
-- The "client" connects, sends its name and a word, and expects the word
-- in capitals back. Complete the server's reply: send string.upper of the
-- word back on the same connection.
--
--   ipcscript test exercises/10_sockets
local ipc = require("ipc")

local l = ipc.listen("tcp", "127.0.0.1:0") -- port 0: any free port

ipc.process("server", function()
  local c = assert(l:accept())
  local m = assert(c:receive())
  -- TODO: reply with string.upper(m.body.word)
  c:send(nil)
  c:close()
end)

ipc.process("client", function(self)
  local c = assert(ipc.connect("tcp", l.address))
  c:send({from = self.name, word = "hello"})
  local reply = assert(c:receive())
  ipc.expect(reply.body == "HELLO", "the server shouts back HELLO; got " .. tostring(reply.body))
  c:close()
end)
