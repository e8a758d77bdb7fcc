-- Exercise 9: shared memory.
--
-- ipc.shm(name, size) is a block of bytes every process sees: what one
-- writes, the others read, without copying and without a message. It does
-- not say when the data is ready: here a message does ("ready"), sent
-- after the write.
--
-- "painter" writes a line of text at offset 0 and a count (i32) at offset
-- 60, then tells "viewer". Complete the viewer: read the count, then that
-- many bytes from offset 0, and send the text to "main".
--
--   ipcscript test exercises/09_shm
local ipc = require("ipc")

local canvas = ipc.shm("canvas", 64)

ipc.process("painter", function()
  local text = "shared, not sent"
  canvas:write(0, text)
  canvas:set("i32", 60, #text)
  ipc.send("viewer", "ready")
end)

ipc.process("viewer", function()
  ipc.receive({from = "painter"})
  local text = ""
  -- TODO: text = the count's worth of bytes from offset 0
  ipc.send("main", text)
end)

ipc.run()
local m = ipc.receive({block = false})
ipc.expect(m and m.body == "shared, not sent", "the viewer read the painter's text; got " .. tostring(m and m.body))
