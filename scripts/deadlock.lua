-- Deadlock: two processes each hold a lock the other needs.
--
-- "left" takes fork 1 then fork 2, "right" fork 2 then fork 1. Each tells
-- the other once it holds its first fork and waits to hear the same back,
-- so both hold one fork when they reach for the second: a cycle of waits
-- that nothing will break. ipcscript sees every process blocked on
-- something no live process can provide, names the cycle in the script's
-- own names, and stops the run. The script says a deadlock is what it
-- demonstrates (expect = "deadlock"), so the run succeeds.
--
-- The cure is one order for everyone: make right take fork 1 first.
--
--   ipcscript scripts/deadlock.lua
local ipc = require("ipc")

local fork1, fork2 = ipc.mutex("fork1"), ipc.mutex("fork2")

local function diner(first, second, other)
  return function()
    first:lock()
    ipc.send(other, "holding my first fork")
    ipc.receive({from = other})
    second:lock() -- never returns: the other holds it, and waits for ours
    second:unlock()
    first:unlock()
  end
end

ipc.process("left", diner(fork1, fork2, "right"))
ipc.process("right", diner(fork2, fork1, "left"))

local report = ipc.run({expect = "deadlock"})
print("deadlock found: " .. tostring(report.deadlock))
