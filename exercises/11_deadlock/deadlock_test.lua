-- Exercise 11: deadlock.
--
-- A deadlock is a cycle of processes each waiting for something only the
-- next one can give. Here "alice" and "bob" each wait to receive the
-- other's greeting before sending their own: alice waits for bob, bob for
-- alice, and neither ever sends. ipcscript sees that every process is
-- blocked on something no live process will provide, names the cycle,
-- and stops the run.
--
-- Break the cycle: change alice so that she sends first, then receives.
-- (Mutexes deadlock the same way when two processes take two locks in
-- opposite orders; the cure there is one order for everyone.)
--
--   ipcscript test exercises/11_deadlock
local ipc = require("ipc")

ipc.process("alice", function()
  local m = ipc.receive({from = "bob"})   -- TODO: send first,
  ipc.send("bob", "hello, bob")            --       then receive
  ipc.expect(m.body == "hello, alice", "bob greeted alice")
end)

ipc.process("bob", function()
  local m = ipc.receive({from = "alice"})
  ipc.send("alice", "hello, alice")
  ipc.expect(m.body == "hello, bob", "alice greeted bob")
end)
