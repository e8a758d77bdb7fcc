-- Named pipes (FIFOs): a pipe with a name in the file system. Unlike
-- ipc.pipe, which only processes of this run inherit, a FIFO is opened by
-- its path, so any program can use it -- here `sort`, which knows nothing
-- of ipcscript, reads the numbers a Lua process writes into the FIFO.
--
--   ipcscript scripts/fifo.lua
local ipc = require("ipc")

-- Made in the run's private directory (mode 0700) and removed when the run
-- ends; numbers.path is the same in every process.
local numbers = ipc.fifo("numbers")
local sorted = ipc.pipe{from = "sort", to = "show"}

ipc.process("gen", function()
  -- Opening a FIFO waits until the other end is opened too (never
  -- forever: the timeout says how long).
  local w = assert(numbers:open("w", {timeout = 10}))
  for _, n in ipairs{42, 7, 19, 3, 100, 64} do w:write(n, "\n") end
  w:close() -- the reader sees end-of-file once no writer is left
end)

-- An external program opens the FIFO by path, like any file.
ipc.process("sort", {exec = {"sort", "-n", numbers.path}, stdout = sorted})

ipc.process("show", function()
  local last, count = -math.huge, 0
  for line in sorted:lines() do
    local n = tonumber(line)
    print(n)
    ipc.expect(n >= last, "sorted order")
    last, count = n, count + 1
  end
  ipc.expect(count == 6, "every number came through the FIFO")
end)
