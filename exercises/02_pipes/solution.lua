-- Exercise 2: pipes and EOF.
--
-- "gen" writes the numbers 1..10 into a pipe, one per line, and exits.
-- "sum" reads lines until the end of the pipe (EOF) and sends the total to
-- "idle", which waits for it. A reader sees EOF only when no process holds
-- the pipe's write end any more. Declared as ipc.pipe() every process
-- holds both ends until its first use, and idle, which never touches the
-- pipe, keeps the write end open: sum would wait for EOF for ever, idle
-- for sum, and the run ends in a deadlock.
--
-- Declare the pipe so that only gen holds the write end and only sum the
-- read end (the options from and to). Then write sum's loop.
--
--   ipcscript test exercises/02_pipes
local ipc = require("ipc")

local numbers = ipc.pipe({from = "gen", to = "sum"})

ipc.process("gen", function()
  for i = 1, 10 do numbers:write(i, "\n") end
end)

ipc.process("sum", function()
  local total = 0
  for line in numbers:lines() do
    total = total + tonumber(line)
  end
  ipc.send("idle", total)
end)

ipc.process("idle", function()
  local m = ipc.receive()
  ipc.expect(m.body == 55, "1 + 2 + ... + 10 = 55; got " .. tostring(m.body))
end)
