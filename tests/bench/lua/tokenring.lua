-- A token passed around a ring of processes by direct links: the cost of a
-- hop when many processes are blocked at once. The Lua side of
-- peers/c/tokenring.c.
--
--   ipcscript run --no-prefix --quiet tokenring.lua -- PROCS LAPS
--
-- node.i sends to node.(i+1), the last to node.1. Every node says it is
-- ready to node.1, which then sends the token round once to warm up and
-- times LAPS more laps, then sends "stop" round, after which each node
-- exits (as peers/c/tokenring.c does: the nodes' exits are not timed; when
-- they were, 255 exits during the last timed lap made it ~20x the others
-- and 10 laps measured 2.5x the steady hop). Prints {"ns_per_op": ns per
-- hop, "ops": hops, ...}.
local ipc = require("ipc")

local args = arg or {}
local procs, laps = tonumber(args[1]), tonumber(args[2])
assert(procs and procs >= 2 and laps and laps >= 1, "usage: tokenring.lua PROCS LAPS")
local body = string.rep("x", 64)

ipc.process("node", {count = procs}, function(self)
  local i = self.index
  local nextNode = "node." .. (i % procs + 1)
  local t = {}
  local into = {into = t}
  if i ~= 1 then
    ipc.send("node.1", true, {type = "ready"})
    repeat
      ipc.receive(into)
      ipc.send(nextNode, t.body)
    until t.body == "stop"
    return
  end
  for _ = 2, procs do
    ipc.receive({type = "ready"})
  end
  ipc.send(nextNode, body) -- the warm-up lap
  ipc.receive(into)
  local t0 = ipc.now()
  for _ = 1, laps do
    ipc.send(nextNode, body)
    ipc.receive(into)
  end
  local secs = ipc.now() - t0
  local ok = t.body == body
  ipc.send(nextNode, "stop") -- the nodes exit after the timed laps
  ipc.receive(into)
  local hops = laps * procs
  print(string.format('{"ns_per_op":%.0f,"ops":%d,"secs":%.6f,"ok":%s}',
    secs * 1e9 / hops, hops, secs, tostring(ok and t.body == "stop")))
end)

ipc.run()
