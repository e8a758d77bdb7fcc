-- Shared memory: bytes every process maps, addressed by offset. Numbers of
-- a given type ("i8" .. "u64", "f32", "f64") are read and written in
-- place; add and cas are atomic, so processes can update the same number
-- without a lock. Here four processes roll dice and count the results in a
-- shared histogram, and each writes a line of text into its own slot.
--
--   ipcscript scripts/shm.lua
local ipc = require("ipc")

local rolls = 3000
-- layout: 6 u32 counters (bytes 0..23), then 4 slots of 16 bytes of text
local mem = ipc.shm("histogram", 24 + 4 * 16)

ipc.process("roller", {count = 4}, function(self)
  local seed = self.index
  for _ = 1, rolls do
    seed = seed * 16807 % 2147483647                   -- Park-Miller random numbers
    local face = seed % 6 + 1
    mem:add("u32", 4 * (face - 1), 1)                  -- atomic
  end
  mem:write(24 + 16 * (self.index - 1), ("%-16s"):format(self.name .. " done"))
end)

ipc.run()
local total = 0
for face = 1, 6 do
  local n = mem:get("u32", 4 * (face - 1))
  print(("%d: %s %d"):format(face, ("#"):rep(math.floor(n / 100)), n))
  total = total + n
end
for i = 0, 3 do print(mem:read(24 + 16 * i, 16)) end
ipc.expect(total == 4 * rolls, "every roll was counted")
