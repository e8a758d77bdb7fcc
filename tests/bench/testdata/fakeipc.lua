-- A stand-in for ipcscript's ipc module, for checking the benchmark
-- scripts' choreography before the runtime can run them: every process is a
-- coroutine in one Lua state, every blocking call yields until it can go on,
-- and a round in which no process makes progress is a deadlock. It offers
-- only the DESIGN.md API the scripts use, with its argument shapes and its
-- rules (objects declared at the top level only, pipe ends by from/to,
-- unlock by the owner only, bounds-checked shared memory), so a script that
-- strays from the contract fails here too. It measures nothing.
local ipc = {}

local procs = {}    -- declared processes, in order
local byname = {}   -- name -> process
local current       -- the running process, nil at the top level
local progress = 0  -- bumped by every operation that changes state
local running = false

local function declared_at_top(what)
  if current then
    error(what .. " declared inside process " .. current.name .. ": declare it at the top level", 3)
  end
end

-- Yields until ready() returns a non-nil first value, then returns them all.
local function block(ready)
  while true do
    local r = {ready()}
    if r[1] ~= nil then
      progress = progress + 1
      return unpack(r)
    end
    if not current then
      error("a blocking call at the top level would wait forever", 3)
    end
    coroutine.yield()
  end
end

local function copy(v, seen)
  local t = type(v)
  if t == "table" then
    seen = seen or {}
    assert(not seen[v], "a message body cannot hold a cycle")
    seen[v] = true
    local c = {}
    for k, x in pairs(v) do
      c[copy(k, seen)] = copy(x, seen)
    end
    seen[v] = nil
    return c
  end
  assert(t == "nil" or t == "boolean" or t == "number" or t == "string", "cannot encode a " .. t)
  return v
end

local function is(proc, name)
  return proc and (proc.name == name or proc.group == name)
end

-- Processes and the run.

function ipc.process(name, opts, fn)
  declared_at_top("process " .. tostring(name))
  if type(opts) == "function" then
    fn, opts = opts, {}
  end
  assert(type(name) == "string" and type(fn) == "function", "ipc.process(name, [opts], fn)")
  local count = opts.count
  for i = 1, count or 1 do
    local p = {
      name = count and (name .. "." .. i) or name, group = name,
      index = i, count = count or 1, pid = 1000 + #procs + 1, args = opts.args,
      fn = fn, inbox = {}, seq = 0,
    }
    assert(not byname[p.name], "process " .. p.name .. " declared twice")
    procs[#procs + 1] = p
    byname[p.name] = p
  end
end

function ipc.run()
  assert(not current, "ipc.run() inside a process")
  assert(not running, "ipc.run() twice")
  running = true
  local alive = {}
  for _, p in ipairs(procs) do
    local self = {name = p.name, group = p.group, index = p.index, count = p.count, pid = p.pid, args = p.args}
    p.co = coroutine.create(function() p.fn(self) end)
    alive[#alive + 1] = p
  end
  while #alive > 0 do
    local before, finished = progress, false
    local still = {}
    for _, p in ipairs(alive) do
      current = p
      local ok, err = coroutine.resume(p.co)
      current = nil
      if not ok then
        error("process " .. p.name .. " failed: " .. tostring(err), 0)
      end
      if coroutine.status(p.co) == "dead" then
        finished = true
      else
        still[#still + 1] = p
      end
    end
    alive = still
    if not finished and progress == before then
      local names = {}
      for _, p in ipairs(alive) do
        names[#names + 1] = p.name
      end
      error("deadlock: every process is blocked: " .. table.concat(names, ", "), 0)
    end
  end
  local report = {ok = true, processes = {}}
  for _, p in ipairs(procs) do
    report.processes[p.name] = {ok = true, exit = 0, pid = p.pid, elapsed = 0}
  end
  return report
end

function ipc.self()
  return current and {name = current.name, group = current.group, index = current.index,
    count = current.count, pid = current.pid}
end

function ipc.now()
  return os.clock()
end

function ipc.sleep(s)
  assert(type(s) == "number" and s >= 0, "ipc.sleep(seconds)")
  progress = progress + 1 -- a sleeper wakes by itself: not a deadlock
  if current then
    coroutine.yield()
  end
end

-- Direct links.

function ipc.send(to, body, opts)
  opts = opts or {}
  local dst = byname[to]
  assert(dst, "ipc.send: unknown process " .. tostring(to))
  assert(current, "ipc.send outside a process")
  current.seq = current.seq + 1
  dst.inbox[#dst.inbox + 1] = {type = opts.type, body = copy(body), src = current.name, dst = to,
    seq = current.seq, time = ipc.now()}
  progress = progress + 1
  return true
end

local fields = {"type", "body", "src", "dst", "len", "seq", "time"}

local function take(queue, opts)
  for i, m in ipairs(queue) do
    if (opts.from == nil or m.src == opts.from or (byname[m.src] and byname[m.src].group == opts.from))
      and (opts.type == nil or m.type == opts.type) then
      table.remove(queue, i)
      if opts.into then -- {into = t}: the fields are set in t, which is returned
        assert(type(opts.into) == "table", "receive: into must be a table")
        for _, k in ipairs(fields) do
          opts.into[k] = m[k]
        end
        return opts.into
      end
      return m
    end
  end
end

function ipc.receive(opts)
  opts = opts or {}
  assert(current, "ipc.receive outside a process")
  local me = current
  return block(function() return take(me.inbox, opts) end)
end

-- Mailboxes.

local Mailbox = {}
Mailbox.__index = Mailbox

function ipc.mailbox(name, opts)
  declared_at_top("mailbox " .. tostring(name))
  local cap = opts and opts.capacity
  assert(cap == nil or (type(cap) == "number" and cap > 0), "mailbox capacity (0, the rendezvous, is not faked)")
  return setmetatable({name = name, q = {}, cap = cap}, Mailbox)
end

function Mailbox:send(body, opts)
  opts = opts or {}
  local src = current.name
  block(function() return (self.cap == nil or #self.q < self.cap) or nil end)
  self.q[#self.q + 1] = {type = opts.type, body = copy(body), src = src, dst = self.name, time = ipc.now()}
  return true
end

function Mailbox:receive(opts)
  opts = opts or {}
  return block(function() return take(self.q, opts) end)
end

-- Buffers: a string and a capacity; reads {into = b} replace the string.

local Buffer = {}
Buffer.__index = Buffer
Buffer.__len = function(b) return #b.s end
Buffer.__tostring = function(b) return b.s end

function ipc.buffer(capacity)
  assert(type(capacity) == "number" and capacity >= 1, "buffer: capacity")
  return setmetatable({s = "", cap = capacity}, Buffer)
end

function Buffer:capacity() return self.cap end
function Buffer:string(i, j) return self.s:sub(i or 1, j or -1) end
function Buffer:byte(i, j) return self.s:byte(i or 1, j or i or 1) end

-- bytes is what a write takes: a string or a buffer's string.
local function bytes(v)
  if getmetatable(v) == Buffer then
    return v.s
  end
  return v
end

-- into puts s into the read options' buffer and returns what the read
-- returns: s, or with a buffer its count.
local function into(opts, n, s)
  local b = opts and opts.into
  if not b then
    return s
  end
  assert(getmetatable(b) == Buffer, "into must be an ipc.buffer")
  assert(n <= b.cap, "read: the count does not fit the buffer")
  b.s = s or ""
  return s and #s
end

-- Byte streams: pipes and unix connections.

local Stream = {}
Stream.__index = Stream

local function stream(buf, writer, reader)
  return setmetatable({buf = buf, writer = writer, reader = reader}, Stream)
end

function Stream:write(...)
  assert(self.out, "write on a read end")
  if self.writer then
    assert(is(current, self.writer), "pipe: only " .. self.writer .. " holds the write end")
  end
  assert(not self.out.closed, "write on a closed stream")
  for _, s in ipairs({...}) do
    self.out.data = self.out.data .. bytes(s)
  end
  progress = progress + 1
  return true
end

function Stream:read(n, opts)
  assert(self.inp, "read on a write end")
  if self.reader then
    assert(is(current, self.reader), "pipe: only " .. self.reader .. " holds the read end")
  end
  assert(type(n) == "number", "the fake reads counts only")
  local inp = self.inp
  return into(opts, n, block(function()
    if #inp.data > 0 then
      local s = inp.data:sub(1, n)
      inp.data = inp.data:sub(n + 1)
      return s
    end
    if inp.closed then
      return false
    end
  end) or nil)
end

function Stream:close()
  if self.out then
    self.out.closed = true
  end
  progress = progress + 1
end

function ipc.pipe(opts)
  declared_at_top("pipe")
  opts = opts or {}
  local buf = {data = ""}
  local p = stream(buf, opts.from, opts.to)
  p.out, p.inp = buf, buf
  return p
end

local Listener = {}
Listener.__index = Listener
local listeners = {} -- address -> listener

function ipc.listen(kind, address)
  declared_at_top("listener " .. tostring(address))
  assert(kind == "unix", "the fake listens on unix only")
  local l = setmetatable({address = "/run/fake/" .. address, pending = {}}, Listener)
  listeners[l.address] = l
  return l
end

function Listener:accept()
  return block(function() return table.remove(self.pending, 1) end)
end

function ipc.connect(kind, address)
  assert(kind == "unix", "the fake connects on unix only")
  local to_server, to_client = {data = ""}, {data = ""}
  local server = stream()
  server.out, server.inp = to_client, to_server
  local client = stream()
  client.out, client.inp = to_server, to_client
  local l = assert(listeners[address], "connect: nothing listens on " .. tostring(address))
  l.pending[#l.pending + 1] = server
  progress = progress + 1
  return client
end

-- Kernel message queues.

local MQueue = {}
MQueue.__index = MQueue

function ipc.mqueue(name, opts)
  declared_at_top("mqueue " .. tostring(name))
  opts = opts or {}
  return setmetatable({name = name, q = {}, cap = opts.capacity or 10, msgsize = opts.msgsize or 8192}, MQueue)
end

function MQueue:send(bytes)
  assert(type(bytes) == "string", "mqueue: send bytes")
  assert(#bytes <= self.msgsize, "mqueue: message larger than msgsize")
  block(function() return #self.q < self.cap or nil end)
  self.q[#self.q + 1] = bytes
  return true
end

function MQueue:receive()
  return block(function() return table.remove(self.q, 1) end), 0
end

-- Semaphores and mutexes.

local Semaphore = {}
Semaphore.__index = Semaphore

function ipc.semaphore(name, initial)
  declared_at_top("semaphore " .. tostring(name))
  assert(type(initial) == "number" and initial >= 0, "semaphore: initial value >= 0")
  return setmetatable({v = initial}, Semaphore)
end

function Semaphore:wait()
  block(function() return self.v > 0 or nil end)
  self.v = self.v - 1
  return true
end

function Semaphore:post(n)
  self.v = self.v + (n or 1)
  progress = progress + 1
end

function Semaphore:value()
  return self.v
end

local Mutex = {}
Mutex.__index = Mutex

function ipc.mutex(name)
  declared_at_top("mutex " .. tostring(name))
  return setmetatable({}, Mutex)
end

function Mutex:lock()
  local me = current
  block(function() return self.owner == nil or nil end)
  self.owner = me
  return true
end

function Mutex:unlock()
  assert(self.owner == current, "unlock by a process that does not hold the mutex")
  self.owner = nil
  progress = progress + 1
end

-- Shared memory: the bytes as one string, typed values beside them.

local Shm = {}
Shm.__index = Shm

local widths = {i8 = 1, u8 = 1, i16 = 2, u16 = 2, i32 = 4, u32 = 4, i64 = 8, u64 = 8, f32 = 4, f64 = 8}

function ipc.shm(name, size)
  declared_at_top("shm " .. tostring(name))
  assert(type(size) == "number" and size > 0, "shm: size")
  return setmetatable({n = size, bytes = string.rep("\0", size), typed = {}}, Shm)
end

local function bounds(mem, off, n)
  assert(off >= 0 and off + n <= mem.n, "shm: offset out of bounds")
end

function Shm:size()
  return self.n
end

function Shm:write(off, b)
  b = bytes(b)
  bounds(self, off, #b)
  self.bytes = self.bytes:sub(1, off) .. b .. self.bytes:sub(off + #b + 1)
  progress = progress + 1
end

function Shm:read(off, n, opts)
  bounds(self, off, n)
  return into(opts, n, self.bytes:sub(off + 1, off + n))
end

local function typed(mem, t, off)
  assert(widths[t], "shm: unknown type " .. tostring(t))
  bounds(mem, off, widths[t])
end

function Shm:get(t, off)
  typed(self, t, off)
  return self.typed[off] or 0
end

function Shm:set(t, off, v)
  typed(self, t, off)
  self.typed[off] = v
  progress = progress + 1
end

function Shm:add(t, off, d)
  typed(self, t, off)
  self.typed[off] = (self.typed[off] or 0) + d
  progress = progress + 1
  return self.typed[off]
end

return ipc
