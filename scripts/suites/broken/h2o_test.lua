-- BROKEN twin of ../h2o_test.lua: atoms bond as soon as they arrive,
-- without waiting to be grouped into a molecule. However the timing
-- falls, nothing keeps more than two hydrogens from bonding at once.
-- fails with: bounded: 8 spans "bondH" were at once \(at most 2 allowed\)
local ipc = require("ipc")

local molecules = 4

local function bond(kind) ipc.span("bond" .. kind, ipc.sleep, 0.001) end

ipc.process("oxygen", {count = molecules}, function() bond("O") end)
ipc.process("hydrogen", {count = 2 * molecules}, function() bond("H") end)

local report = ipc.run{trace = true}
ipc.expect(report.trace:bounded("bondH", 2))
