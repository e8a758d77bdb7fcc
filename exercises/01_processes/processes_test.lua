-- Exercise 1: processes.
--
-- Declare a group of 3 processes named "worker" (ipc.process with
-- {count = 3}). Each is a real OS process; its body gets self, with
-- self.index = 1, 2 or 3. Each worker sends self.index * self.index to
-- the supervisor ("main") with ipc.send. The supervisor adds up what it
-- received after ipc.run(): 1 + 4 + 9 = 14.
--
--   ipcscript test exercises/01_processes
local ipc = require("ipc")

-- TODO: declare the workers here.

local report = ipc.run()
local sum, messages = 0, 0
while true do
  local m = ipc.receive({block = false})
  if not m then break end
  sum, messages = sum + m.body, messages + 1
end
ipc.expect(report.ok, "every process exited 0")
ipc.expect(messages == 3, "3 messages, one per worker; got " .. messages)
ipc.expect(sum == 14, "1 + 4 + 9 = 14; got " .. sum)
