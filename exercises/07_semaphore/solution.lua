-- Exercise 7: semaphores.
--
-- A counting semaphore holds a number: wait() takes one (sleeping while
-- there is none), post() gives one back. Initialised to n, it lets at most
-- n processes past wait() at a time.
--
-- Five "visitor" processes enter a room, each several times. Declare the
-- semaphore room so that at most 2 are inside at once, and make each
-- visitor wait before it enters and post after it leaves. The visitors
-- count who is inside in shared memory and record the most they saw.
--
--   ipcscript test exercises/07_semaphore
local ipc = require("ipc")

local counts = ipc.shm("counts", 8) -- i32 at 0: inside now; i32 at 4: the most inside
local room = ipc.semaphore("room", 2)

ipc.process("visitor", {count = 5}, function()
  for _ = 1, 20 do
    room:wait()
    local inside = counts:add("i32", 0, 1)
    local most = counts:get("i32", 4)
    while inside > most and not counts:cas("i32", 4, most, inside) do most = counts:get("i32", 4) end
    ipc.sleep(0.001) -- stay a moment, so that others try to come in
    counts:add("i32", 0, -1)
    room:post()
  end
end)

ipc.run()
local most = counts:get("i32", 4)
ipc.expect(room ~= nil, "room is a semaphore")
ipc.expect(most <= 2, "at most 2 inside at once; " .. most .. " were")
