-- The dining philosophers, the naive way: each picks up the left fork,
-- then the right one. Once all five hold their left fork, each waits for
-- a fork its neighbour holds, forever: a deadlock. ipcscript sees every
-- process blocked on a mutex held by another and reports the cycle.
--
-- The script makes the unlucky interleaving certain: a host lets the
-- philosophers reach for the right fork only once all hold their left.
local ipc = require("ipc")

local n = 5
local forks = {}
for i = 1, n do forks[i] = ipc.mutex("fork" .. i) end
local seated, go = ipc.semaphore("seated", 0), ipc.semaphore("go", 0)

ipc.process("philosopher", {count = n}, function(self)
  local left, right = self.index, self.index % n + 1
  forks[left]:lock()
  seated:post()
  go:wait()
  forks[right]:lock() -- never returns
end)

ipc.process("host", function()
  for _ = 1, n do seated:wait() end
  go:post(n)
end)

ipc.run{expect = "deadlock"}
