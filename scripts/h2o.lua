-- Building H2O (Downey, The Little Book of Semaphores, 5.6), with a barrier.
--
-- Hydrogen and oxygen atoms are processes. They must bond in groups of
-- exactly two hydrogens and one oxygen: the three of a molecule all bond
-- before any atom of the next molecule does. Downey's solution: a mutex
-- taken by whichever atom completes a group, queues (semaphores) that
-- release exactly two hydrogens and one oxygen, and a barrier of 3 that
-- holds the three until all have bonded. The mutex (a semaphore of 1, since
-- the atom that takes it is not always the one that gives it back) stays
-- taken for the whole molecule; the oxygen gives it back after the barrier.
--
--   ipcscript scripts/h2o.lua [molecules]
local ipc = require("ipc")

local MOLECULES = tonumber(arg[1]) or 10

local mutex = ipc.semaphore("mutex", 1)
local oxy_queue = ipc.semaphore("oxyQueue", 0)
local hydro_queue = ipc.semaphore("hydroQueue", 0)
local barrier = ipc.barrier("bond", 3)
local s = ipc.shared("state", {
  oxygen = "i32", hydrogen = "i32",       -- atoms waiting, as in the book
  h_bonded = "i32", o_bonded = "i32",     -- atoms of the molecule being built
  molecules = "i32", serials = "i32", bad = "i32",
})

local function bond(kind)
  if kind == "H" then s:add("h_bonded", 1) else s:add("o_bonded", 1) end
end

ipc.process("oxygen", {count = MOLECULES}, function()
  mutex:wait()
  s.oxygen = s.oxygen + 1
  if s.hydrogen >= 2 then
    hydro_queue:post(2); s.hydrogen = s.hydrogen - 2
    oxy_queue:post(); s.oxygen = s.oxygen - 1
  else
    mutex:post()
  end
  oxy_queue:wait()
  bond("O")
  local _, serial = barrier:wait()
  if serial then s:add("serials", 1) end
  -- The mutex is still held for this molecule: check it and start the next.
  if s.h_bonded ~= 2 or s.o_bonded ~= 1 then s:add("bad", 1) end
  s.h_bonded, s.o_bonded = 0, 0
  s:add("molecules", 1)
  mutex:post()
end)

ipc.process("hydrogen", {count = 2 * MOLECULES}, function()
  mutex:wait()
  s.hydrogen = s.hydrogen + 1
  if s.hydrogen >= 2 and s.oxygen >= 1 then
    hydro_queue:post(2); s.hydrogen = s.hydrogen - 2
    oxy_queue:post(); s.oxygen = s.oxygen - 1
  else
    mutex:post()
  end
  hydro_queue:wait()
  bond("H")
  local _, serial = barrier:wait()
  if serial then s:add("serials", 1) end
end)

local report = ipc.run()
ipc.expect(s.bad == 0, "every molecule had two hydrogens and one oxygen")
ipc.expect(s.molecules == MOLECULES and s.serials == MOLECULES, "one serial atom per molecule")
print(string.format("%d molecules of H2O, %d malformed, one serial atom each: %s",
  s.molecules, s.bad, tostring(s.serials == MOLECULES)))
