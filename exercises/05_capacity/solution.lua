-- Exercise 5: capacity, blocking and non-blocking sends.
--
-- A link's capacity is how many messages may wait in it: 0 is a
-- rendezvous (a send returns once a receiver has the message), n bounds
-- the queue (a send blocks while n wait), and no capacity means unbounded.
-- A send with {block = false} never waits: when it would have to, it
-- returns nil, "full" instead.
--
-- Nobody receives here. Complete "probe": send 1, 2, 3, ... into the
-- mailbox "small" without blocking until a send says "full", and count the
-- sends that succeeded. Then try one non-blocking send on the rendezvous
-- mailbox "meet" and keep what it returns.
--
--   ipcscript test exercises/05_capacity
local ipc = require("ipc")

local small = ipc.mailbox("small", {capacity = 3})
local meet = ipc.mailbox("meet", {capacity = 0})

ipc.process("probe", function()
  local fitted, meet_ok, meet_err = 0, nil, nil
  while true do
    local ok, err = small:send(fitted + 1, {block = false})
    if not ok then
      ipc.expect(err == "full", "a non-blocking send on a full mailbox says full; got " .. tostring(err))
      break
    end
    fitted = fitted + 1
  end
  meet_ok, meet_err = meet:send("anyone?", {block = false})
  ipc.expect(fitted == 3, "3 messages fit a mailbox of capacity 3; got " .. fitted)
  ipc.expect(meet_ok == nil and meet_err == "full",
    "a rendezvous with nobody receiving is full at once; got " .. tostring(meet_ok) .. ", " .. tostring(meet_err))
end)
