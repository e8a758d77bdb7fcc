-- Fan-out with `count`: n worker processes from one declaration, each
-- told its index. They report back through one shared pipe; since every
-- line is written with a single write(2) of less than PIPE_BUF bytes, lines
-- from different workers never mix.
--
--   ipcscript scripts/fanout.lua [workers]
local ipc = require("ipc")

local workers = tonumber(arg[1]) or 4
local results = ipc.pipe{to = "collector"}

ipc.process("worker", {count = workers, args = {chunk = 1000}}, function(self)
  -- worker i sums the i-th chunk of 1..workers*chunk
  local first = (self.index - 1) * self.args.chunk + 1
  local sum = 0
  for x = first, first + self.args.chunk - 1 do sum = sum + x end
  results:write(self.name, " ", sum, "\n")
end)

ipc.process("collector", function()
  local total, seen = 0, 0
  for line in results:lines() do
    local name, sum = line:match("^(%S+) (%d+)$")
    print(name .. " sent " .. sum)
    total, seen = total + tonumber(sum), seen + 1
  end
  local n = workers * 1000
  print(("total %d from %d workers"):format(total, seen))
  ipc.expect(seen == workers and total == n * (n + 1) / 2, "every worker's sum arrived")
end)

local report = ipc.run()
for name, p in pairs(report.processes) do
  if not p.ok then ipc.log(name .. " failed: " .. tostring(p.error)) end
end
