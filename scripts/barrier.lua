-- A reusable barrier: a parallel prefix sum (Hillis and Steele) in
-- shared memory, one process per element.
--
-- In step d (d = 1, 2, 4, ...) every element i > d adds the value element
-- i - d had at the end of the previous step. That is only right if nobody
-- writes step d's values before everyone has read step d - 1's: so each
-- step has two phases, read and write, separated by the same barrier,
-- reused 1 + 2 * log2(N) times (once more at the start, once every
-- element is set). The barrier's serial party (one per phase,
-- as with pthread_barrier_wait) counts the phases.
--
--   ipcscript scripts/barrier.lua
local ipc = require("ipc")

local N = 16
local b = ipc.barrier("step", N)
local v = ipc.shared("prefix", {a = {"i64", N}, phases = "i32"})

ipc.process("element", {count = N}, function(self)
  local i = self.index
  v.a[i] = i                       -- in the body: top-level code runs in every process
  local _, serial = b:wait()       -- every element is set
  if serial then v:add("phases", 1) end
  local d = 1
  while d < N do
    local add = 0
    if i > d then add = v.a[i - d] end
    _, serial = b:wait()           -- everyone has read
    if serial then v:add("phases", 1) end
    v.a[i] = v.a[i] + add
    _, serial = b:wait()           -- everyone has written
    if serial then v:add("phases", 1) end
    d = d * 2
  end
end)

local report = ipc.run()
local right = true
for i = 1, N do
  if v.a[i] ~= i * (i + 1) / 2 then right = false end
end
ipc.expect(right, "a[i] = 1 + 2 + ... + i")
ipc.expect(v.phases == 1 + 2 * 4, "one serial party per phase")
print(string.format("prefix sums of 1..%d: %s; a[%d] = %d; %d phases", N, right and "right" or "WRONG", N, v.a[N], v.phases))
