-- A pipeline of three Lua processes connected by pipes, like a shell's
-- `gen | square | total`. Each process is a real OS process; each pipe is a
-- real kernel pipe.
--
--   ipcscript scripts/pipeline.lua [n]
local ipc = require("ipc")

local n = tonumber(arg[1]) or 10

-- from/to say who holds each end: only `gen` can write to `numbers` and
-- only `square` can read it, so `square` sees end-of-file as soon as `gen`
-- is done.
local numbers = ipc.pipe{from = "gen", to = "square"}
local squares = ipc.pipe{from = "square", to = "total"}

ipc.process("gen", function()
  for i = 1, n do
    numbers:write(i, "\n")
  end
end)

ipc.process("square", function()
  for line in numbers:lines() do
    local x = tonumber(line)
    squares:write(x * x, "\n")
  end
end)

ipc.process("total", function()
  local sum, count = 0, 0
  for line in squares:lines() do
    sum, count = sum + tonumber(line), count + 1
  end
  print(("%d squares, sum %d"):format(count, sum))
  ipc.expect(sum == n * (n + 1) * (2 * n + 1) / 6, "sum of squares")
end)

local report = ipc.run()
ipc.log("pipeline done, ok = " .. tostring(report.ok))
