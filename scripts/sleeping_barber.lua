-- The sleeping barber: a barber shop with one barber, one barber chair
-- and a few waiting chairs. With no customers the barber sleeps; a
-- customer who arrives wakes him, or waits if he is busy, or leaves if
-- every waiting chair is taken.
--
--   customers  counts customers waiting (the barber sleeps on it)
--   barber     the barber is ready to cut (a waiting customer sleeps on it)
--   done       the haircut is over
--   seats      a mutex guarding the count of waiting customers
--
--   ipcscript scripts/sleeping_barber.lua [customers]
local ipc = require("ipc")

local chairs = 3
local n = tonumber(arg[1]) or 12
local customers = ipc.semaphore("customers", 0)
local barber = ipc.semaphore("barber", 0)
local done = ipc.semaphore("done", 0)
local seats = ipc.mutex("seats")
-- i32: waiting at 0, served at 4, turned away at 8, finished at 12,
-- closing at 16, most waiting at 20
local shop = ipc.shm("shop", 24)
local WAITING, SERVED, AWAY, FINISHED, CLOSING, MOST = 0, 4, 8, 12, 16, 20

-- The last customer to leave closes the shop: the barber wakes and goes home.
local function leave()
  if shop:add("i32", FINISHED, 1) == n then
    shop:set("i32", CLOSING, 1)
    customers:post()
  end
end

ipc.process("barber", function()
  while true do
    customers:wait()                          -- sleep until a customer comes
    local closing = seats:with(function()
      if shop:get("i32", WAITING) == 0 then return shop:get("i32", CLOSING) == 1 end
      shop:add("i32", WAITING, -1)            -- call the next customer in
      barber:post()
      return false
    end)
    if closing then break end
    ipc.sleep(0.01)                           -- cut hair
    shop:add("i32", SERVED, 1)
    done:post()
  end
  print(("served %d, turned away %d"):format(shop:get("i32", SERVED), shop:get("i32", AWAY)))
end)

ipc.process("customer", {count = n}, function(self)
  ipc.sleep(0.004 * self.index)               -- customers arrive one by one
  local seated = seats:with(function()
    local w = shop:get("i32", WAITING)
    if w == chairs then return false end      -- no free chair: leave
    shop:set("i32", WAITING, w + 1)
    if w + 1 > shop:get("i32", MOST) then shop:set("i32", MOST, w + 1) end
    customers:post()                          -- wake the barber if he sleeps
    return true
  end)
  if seated then
    barber:wait()                             -- wait for the barber
    done:wait()                               -- get a haircut
  else
    shop:add("i32", AWAY, 1)
  end
  leave()
end)

ipc.run()
local served, away = shop:get("i32", SERVED), shop:get("i32", AWAY)
ipc.expect(served + away == n, "every customer was served or turned away")
ipc.expect(shop:get("i32", MOST) <= chairs, "never more waiting than chairs")
print(("%d customers: %d served, %d turned away, at most %d waiting"):format(n, served, away, shop:get("i32", MOST)))
