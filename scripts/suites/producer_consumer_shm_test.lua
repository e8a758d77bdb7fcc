-- Producer/consumer over a bounded buffer in shared memory: a ring of
-- slots, `empty` and `full` count free and filled slots, and `lock` (a
-- binary semaphore) keeps two processes out of the ring's indexes at once.
--
-- Checked on the recorded run, not on prints:
--   * exclusive("ring"): every use of the ring's indexes is ordered by
--     happens-before after the previous one (the lock does that);
--   * linearizable("ring", queue): what the consumers took is what a FIFO
--     queue would have given them, in an order that respects real time.
local ipc = require("ipc")

local slots, producers, consumers, items = 3, 2, 2, 12
local empty = ipc.semaphore("empty", slots)
local full = ipc.semaphore("full", 0)
local lock = ipc.semaphore("lock", 1)
local ring = ipc.shm("ring", 8 * slots + 8)
local IN, OUT = 8 * slots, 8 * slots + 4

local function put(_, item)
  local at = ring:get("i32", IN)
  ring:set("i64", 8 * at, item)
  ring:set("i32", IN, (at + 1) % slots)
end

local function take()
  local at = ring:get("i32", OUT)
  ring:set("i32", OUT, (at + 1) % slots)
  return ring:get("i64", 8 * at)
end

ipc.process("producer", {count = producers}, function(self)
  for i = 1, items do
    empty:wait()
    lock:wait()
    ipc.span("ring", put, "put", self.index * 1000 + i)
    lock:post()
    full:post()
  end
end)

ipc.process("consumer", {count = consumers}, function()
  for _ = 1, producers * items / consumers do
    full:wait()
    lock:wait()
    ipc.span("ring", take, "take")
    lock:post()
    empty:post()
  end
end)

-- The sequential specification: a FIFO queue. Input is "take" or
-- {"put", item}; a take returns the oldest item.
local queue = {
  init = function() return {} end,
  step = function(q, input, output)
    local next = {}
    for i, v in ipairs(q) do next[i] = v end
    if input == "take" then
      if #q == 0 or q[1] ~= output then return false, q end
      table.remove(next, 1)
      return true, next
    end
    next[#next + 1] = input[2]
    return true, next
  end,
  describe = function(input, output)
    if input == "take" then return "take() -> " .. tostring(output) end
    return "put(" .. tostring(input[2]) .. ")"
  end,
}

local report = ipc.run{trace = true}
ipc.expect(report.trace:exclusive("ring"))
ipc.expect(report.trace:linearizable("ring", queue))
