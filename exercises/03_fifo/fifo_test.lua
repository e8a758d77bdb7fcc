-- Exercise 3: named pipes (FIFOs).
--
-- A pipe needs a common origin: it is declared before the processes that
-- share it. A named pipe (a FIFO) has a name in the file system instead,
-- so any program that knows the path can open it; opening waits until the
-- other end is opened too.
--
-- "writer" opens the FIFO for writing and writes one line; "reader" opens
-- it for reading (each open waits for the other). Complete the reader:
-- read one line and send it to "main".
--
--   ipcscript test exercises/03_fifo
local ipc = require("ipc")

local f = ipc.fifo("greetings")

ipc.process("writer", function()
  local w = assert(f:open("w"))
  w:write("hello through ", f.path:match("[^/]+$"), "\n")
  w:close()
end)

ipc.process("reader", function()
  local line
  local r = assert(f:open("r")) -- waits until the writer opens its end
  -- TODO: read one line from r into line (r:read()).
  r:close()
  ipc.send("main", line)
end)

ipc.run()
local m = ipc.receive({block = false})
ipc.expect(m and m.body == "hello through greetings", "the reader got the writer's line; got " .. tostring(m and m.body))
