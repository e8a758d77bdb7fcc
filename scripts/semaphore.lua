-- Counting semaphores: a counter that wait() decrements, sleeping while it
-- is 0, and post() increments, waking a sleeper. Initialised to n it lets
-- at most n processes into a section at once (here: 2 printers shared by 5
-- jobs); initialised to 0 it is a signal one process gives another.
--
--   ipcscript scripts/semaphore.lua
local ipc = require("ipc")

local printers = ipc.semaphore("printers", 2)
local finished = ipc.semaphore("finished", 0)
local mem = ipc.shm("stats", 8) -- i32 at 0: printing now; i32 at 4: most at once

ipc.process("job", {count = 5}, function(self)
  for _ = 1, 3 do
    printers:wait()                              -- take a printer
    local now = mem:add("i32", 0, 1)
    local most = mem:get("i32", 4)
    while now > most and not mem:cas("i32", 4, most, now) do most = mem:get("i32", 4) end
    ipc.sleep(0.01)                              -- print
    mem:add("i32", 0, -1)
    printers:post()                              -- give it back
  end
  finished:post()                                -- signal the watcher
end)

ipc.process("watcher", function()
  for _ = 1, 5 do finished:wait() end            -- sleeps until all 5 jobs posted
  print("all jobs done; at most " .. mem:get("i32", 4) .. " printed at once")
  ipc.expect(mem:get("i32", 4) <= 2, "never more than 2 printers in use")
end)
