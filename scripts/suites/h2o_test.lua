-- Building H2O (Downey 5.6): oxygen and hydrogen atoms arrive as
-- processes and must bond in groups of two hydrogens and one oxygen; the
-- atoms of one molecule bond before any atom of the next one does.
--
--   mutex              : held by the atom that assembles a molecule
--   oxyQueue, hydroQueue: the atoms waiting to be part of one
--   barrier (3)        : the three atoms of a molecule leave together
--
-- Checked on the recorded run: at most one oxygen and two hydrogens are
-- ever bonding at once, in happens-before (bounded), which is what
-- bonding molecule after molecule means.
local ipc = require("ipc")

local molecules = 4
local mutex = ipc.semaphore("mutex", 1)
local oxyQueue, hydroQueue = ipc.semaphore("oxyQueue", 0), ipc.semaphore("hydroQueue", 0)
local bmutex, turnstile, turnstile2 = ipc.semaphore("bmutex", 1), ipc.semaphore("turnstile", 0), ipc.semaphore("turnstile2", 0)
local shm = ipc.shm("counts", 12) -- i32 oxygen at 0, hydrogen at 4, barrier count at 8

local function barrier()
  bmutex:wait()
  local c = shm:get("i32", 8) + 1
  shm:set("i32", 8, c)
  if c == 3 then turnstile:post(3) end
  bmutex:post()
  turnstile:wait()
  bmutex:wait()
  c = shm:get("i32", 8) - 1
  shm:set("i32", 8, c)
  if c == 0 then turnstile2:post(3) end
  bmutex:post()
  turnstile2:wait()
end

local function bond(kind) ipc.span("bond" .. kind, ipc.sleep, 0.001) end

ipc.process("oxygen", {count = molecules}, function()
  mutex:wait()
  local o = shm:get("i32", 0) + 1
  shm:set("i32", 0, o)
  if shm:get("i32", 4) >= 2 then
    hydroQueue:post(2)
    shm:set("i32", 4, shm:get("i32", 4) - 2)
    oxyQueue:post()
    shm:set("i32", 0, o - 1)
  else
    mutex:post()
  end
  oxyQueue:wait()
  bond("O")
  barrier()
  mutex:post() -- the oxygen always assembled or completed the molecule
end)

ipc.process("hydrogen", {count = 2 * molecules}, function()
  mutex:wait()
  local h = shm:get("i32", 4) + 1
  shm:set("i32", 4, h)
  if h >= 2 and shm:get("i32", 0) >= 1 then
    hydroQueue:post(2)
    shm:set("i32", 4, h - 2)
    oxyQueue:post()
    shm:set("i32", 0, shm:get("i32", 0) - 1)
  else
    mutex:post()
  end
  hydroQueue:wait()
  bond("H")
  barrier()
end)

local report = ipc.run{trace = true}
ipc.expect(report.trace:bounded("bondO", 1))
ipc.expect(report.trace:bounded("bondH", 2))
