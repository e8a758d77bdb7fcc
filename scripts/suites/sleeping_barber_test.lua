-- The sleeping barber: a barber, a waiting room of `chairs` chairs, and
-- customers who leave when every chair is taken. The barber sleeps until
-- a customer wakes it; a customer sits until the barber calls.
--
--   customers : counts waiting customers (the barber sleeps on it)
--   barber    : the barber calls the next customer
--   left      : the customer got up from the barber's chair
--   mutex     : guards the count of waiting customers in shared memory
--
-- Checked on the recorded run: haircuts (the customer's span) never
-- overlap and are ordered by happens-before: the barber calls the next
-- customer only after the last one has left the chair.
local ipc = require("ipc")

local chairs, people = 2, 6
local customers, barber = ipc.semaphore("customers", 0), ipc.semaphore("barber", 0)
local left, mutex = ipc.semaphore("left", 0), ipc.semaphore("mutex", 1)
local shop = ipc.shm("shop", 8) -- i32 waiting at 0, i32 customers done (served or gone) at 4

ipc.process("barber", function()
  while true do
    customers:wait()
    if shop:get("i32", 4) >= people then return end -- the last customer closed the shop
    mutex:wait()
    shop:set("i32", 0, shop:get("i32", 0) - 1)
    mutex:post()
    barber:post()  -- come in
    left:wait()    -- until the customer has got up
    if shop:add("i32", 4, 1) >= people then return end
  end
end)

ipc.process("customer", {count = people}, function()
  mutex:wait()
  local waiting = shop:get("i32", 0)
  if waiting == chairs then
    mutex:post()
    if shop:add("i32", 4, 1) == people then customers:post() end -- the last one out closes the shop
    return
  end
  shop:set("i32", 0, waiting + 1)
  mutex:post()
  customers:post()
  barber:wait()
  ipc.span("haircut", ipc.sleep, 0.002)
  left:post()
end)

local report = ipc.run{trace = true}
ipc.expect(report.trace:exclusive("haircut"))
