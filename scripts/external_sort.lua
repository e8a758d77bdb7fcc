-- A pipe into and out of an external program: Lua processes feed `sort -n`
-- and read what it prints. An external program is just another process;
-- its stdin and stdout are the pipes' ends.
--
--   ipcscript scripts/external_sort.lua
local ipc = require("ipc")

local unsorted = ipc.pipe{from = "gen", to = "sort"}
local sorted = ipc.pipe{from = "sort", to = "show"}

ipc.process("gen", function()
  math.randomseed(42)
  for _ = 1, 8 do
    unsorted:write(math.random(1, 1000), "\n")
  end
end)

ipc.process("sort", {exec = {"sort", "-n"}, stdin = unsorted, stdout = sorted})

ipc.process("show", function()
  local last = -math.huge
  for line in sorted:lines() do
    local x = tonumber(line)
    ipc.expect(x >= last, "sort's output is in order")
    last = x
    print(x)
  end
end)
