---@meta ipc
-- LuaLS (lua-language-server) definitions of the `ipc` module: completion,
-- hover and type checks in an editor. Nothing here runs: ipcscript builds the
-- real module in Go (bindings/). The contract is docs/LUA_API.md.
--
-- Conventions, which bindings/stubs_test.go relies on:
--   * a userdata class is named as the Go code registers it (lower case:
--     ipc.mailbox, ipc.fifo.stream); its methods are `function V:name(...)`
--     after `---@class ipc.x` and `local V = {}`;
--   * a table shape (options, the message, the report) or a base class
--     that only shares methods has a capitalised name (ipc.Message,
--     ipc.Stream) and is not checked against the module;
--   * module functions are `function ipc.name(...)`, constants
--     `ipc.NAME = "value"`.
-- When the module gains a function, method or class, add it here (the test
-- says exactly what is missing); `go test ./bindings -run TestStubs`.

local ipc = {}

-- ---------------------------------------------------------------------------
-- Outcomes: a call a script is expected to handle returns nil and one of
-- these strings.

---@alias ipc.Outcome
---| '"timeout"' # the timeout passed
---| '"empty"'   # a non-blocking receive or wait found nothing
---| '"full"'    # a non-blocking send found no room
---| '"closed"'  # the object was closed and is drained, or the peer exited
---| '"eof"'     # the end of a stream
---| '"invalid"' # a socket message from outside the run whose body cannot be decoded

ipc.TIMEOUT = "timeout"
ipc.EMPTY = "empty"
ipc.FULL = "full"
ipc.CLOSED = "closed"
ipc.EOF = "eof"
ipc.INVALID = "invalid"

-- ---------------------------------------------------------------------------
-- Options tables

---@class ipc.WaitOpts
---@field timeout? number seconds; 0 = do not wait
---@field block? boolean default true; false returns at once

---@class ipc.ReadOpts: ipc.WaitOpts
---@field into? ipc.buffer read into this buffer (with a byte count): the read returns the count

---@class ipc.SendOpts: ipc.WaitOpts
---@field type? string the message's type (at most 255 bytes)
---@field keep? boolean descriptors in the body (pipe ends, FIFO streams, connections, listeners) stay open in the sender too

---@class ipc.ReceiveOpts: ipc.WaitOpts
---@field from? string only messages from this process
---@field type? string only messages of this type
---@field into? table set the message's fields in this table and return it (no new table per message)

---@class ipc.ProcessOpts
---@field count? integer n instances named name.."."..i (i = 1..n)
---@field args? any passed to the body as self.args
---@field exec? string[] an external program instead of a Lua body, e.g. {"sort", "-n"}
---@field stdin? ipc.pipe|ipc.fifo the process's standard input
---@field stdout? ipc.pipe|ipc.fifo the process's standard output
---@field stderr? ipc.pipe|ipc.fifo the process's standard error
---@field spawn? boolean a template: no instance at launch; ipc.spawn starts them

---@class ipc.SpawnOpts
---@field name? string the instance's name (default template.N)
---@field keep? boolean descriptors in args stay open in the spawner too

---@class ipc.RunOpts
---@field timeout? number stop the run after this many seconds
---@field fail_fast? boolean stop every process as soon as one fails
---@field expect? '"deadlock"'|'"timeout"'|'"failure"' the outcome the script demonstrates: it then counts as success
---@field trace? boolean record the run, so that report.trace holds it (docs/CHECKING.md)

---@class ipc.PipeOpts
---@field from? string the only process that holds the write end
---@field to? string the only process that holds the read end

---@class ipc.MailboxOpts
---@field capacity? integer 0 = rendezvous, n = at most n queued; absent = unbounded

---@class ipc.LinkOpts
---@field capacity integer 0 = rendezvous, n = at most n queued per sender

---@class ipc.FifoOpts
---@field path? string where the FIFO lives (default: in the run's private directory)

---@class ipc.MqueueOpts
---@field capacity? integer messages the queue holds (default 10)
---@field msgsize? integer largest message in bytes (default 8192)
---@field public? boolean give it a name other programs can open (q.name)

---@class ipc.MqSendOpts: ipc.WaitOpts
---@field priority? integer higher is received first (default 0)

---@class ipc.ConnectOpts
---@field timeout? number seconds to wait for the connection

-- ---------------------------------------------------------------------------
-- Values

---@class ipc.Self
---@field name string instance name ("worker.2"; "main" in the supervisor)
---@field group string the declared name ("worker")
---@field index integer 1..count
---@field count integer instances in the group
---@field pid integer
---@field args any opts.args of the declaration

---@class ipc.Message
---@field type? string
---@field body any the value sent
---@field src string the sending process's name
---@field dst string the receiving process's name, or the mailbox's name
---@field len integer body bytes (MessagePack)
---@field seq integer 1, 2, ... per sender per destination
---@field time number send time, ipc.now() seconds

---@class ipc.SocketMessage: ipc.Message
---@field peer string the connection's remote address ("127.0.0.1:5555", a unix path, "unix (unnamed)")

---@class ipc.ProcessReport
---@field ok boolean exited 0 and no expectation failed
---@field exit integer exit status; -1 when killed by a signal or never started
---@field signal? string the signal that killed it ("SIGKILL")
---@field error? string its Lua error or start failure
---@field pid integer
---@field elapsed number seconds from start to exit

---@class ipc.Report
---@field ok boolean every process exited 0, no expectation failed, no unexpected deadlock or timeout
---@field elapsed number seconds
---@field timed_out boolean
---@field deadlock? string the wait-for cycle, in the script's names
---@field processes table<string, ipc.ProcessReport> by instance name
---@field failed string[] failed expectations, "proc: file:line: message"
---@field trace? ipc.trace the recorded run (with ipc.run{trace = true}, --trace or --race)

---@alias ipc.Selectable ipc.mailbox|ipc.inbox|ipc.pipe|ipc.fifo.stream|ipc.mqueue|ipc.conn|ipc.listener

---@alias ipc.MemType '"i8"'|'"u8"'|'"i16"'|'"u16"'|'"i32"'|'"u32"'|'"i64"'|'"u64"'|'"f32"'|'"f64"'

-- ---------------------------------------------------------------------------
-- Processes and the run

---Declares a process; in every child the script runs again and fn(self) is
---that child's body. Top level only.
---@param name string
---@param opts ipc.ProcessOpts|fun(self: ipc.Self)
---@param fn? fun(self: ipc.Self)
function ipc.process(name, opts, fn) end

---In the supervisor: launches every process, waits, and returns the report.
---In a child: runs that child's body and never returns.
---@param opts? ipc.RunOpts
---@return ipc.Report
function ipc.run(opts) end

---This process.
---@return ipc.Self
function ipc.self() end

---@param seconds number
function ipc.sleep(seconds) end

---Monotonic seconds.
---@return number
function ipc.now() end

---A line on stderr prefixed with the process name.
---@param ... any
function ipc.log(...) end

---Records a failed expectation when cond is false or nil: the run fails.
---Takes a check's `false, explanation` as it is.
---@param cond any
---@param message? string
function ipc.expect(cond, message) end

---A point in this process's trace (docs/TRACING.md), with optional fields.
---Does nothing when the run is not recorded.
---@param label string
---@param fields? table
function ipc.mark(label, fields) end

---Calls fn(...) and records the call as an interval of this process's
---trace, with its arguments and results: a critical section for
---report.trace:exclusive, an operation for report.trace:linearizable.
---@param label string
---@param fn function
---@param ... any
---@return any ... what fn returned
function ipc.span(label, fn, ...) end

-- ---------------------------------------------------------------------------
-- Message passing

---Sends body to a process (an instance name, or "main").
---@param to string
---@param body any nil, booleans, numbers, strings and tables of those
---@param opts? ipc.SendOpts
---@return true|nil ok
---@return ipc.Outcome? err "full", "timeout" or "closed"
function ipc.send(to, body, opts) end

---Receives from this process's inbox.
---@param opts? ipc.ReceiveOpts
---@return ipc.Message|nil msg
---@return ipc.Outcome? err "empty", "timeout" or "closed"
function ipc.receive(opts) end

---Declares the capacity of the a -> b direct link (process or group names).
---@param a string
---@param b string
---@param opts ipc.LinkOpts
function ipc.link(a, b, opts) end

---Declares a mailbox: an indirect link any number of processes share.
---@param name string
---@param opts? ipc.MailboxOpts
---@return ipc.mailbox
function ipc.mailbox(name, opts) end

---Waits until one of the objects can be received from. For message objects
---it receives and returns the message (for a message queue, the bytes); for
---streams and listeners it returns the ready object and value = nil.
---@param objects ipc.Selectable[]
---@param opts? ipc.WaitOpts
---@return ipc.Selectable|nil src the very object passed in
---@return ipc.Message|string|nil value
---@return ipc.Outcome? err "timeout", "empty" or "closed"
function ipc.select(objects, opts) end

---This process's inbox, for ipc.select.
---@type ipc.inbox
ipc.inbox = nil

---@class ipc.inbox
local inbox = {}

---@param opts? ipc.ReceiveOpts
---@return ipc.Message|nil msg
---@return ipc.Outcome? err
function inbox:receive(opts) end

---@class ipc.mailbox
---@field name string
---@field capacity? integer nil when unbounded
local mailbox = {}

---@param body any
---@param opts? ipc.SendOpts
---@return true|nil ok
---@return ipc.Outcome? err "full", "timeout" or "closed"
function mailbox:send(body, opts) end

---@param opts? ipc.ReceiveOpts
---@return ipc.Message|nil msg
---@return ipc.Outcome? err "empty", "timeout" or "closed"
function mailbox:receive(opts) end

---Later sends are an error; receivers drain what is queued, then get "closed".
function mailbox:close() end

---The messages queued now (a snapshot).
---@return integer
function mailbox:len() end

-- ---------------------------------------------------------------------------
-- Byte streams: pipes, FIFO ends, socket connections

---@class ipc.Stream
local Stream = {}

---Reads as Lua's io does: n bytes, "l" a line (the default), "L" a line
---with its end, "a" everything, "n" a number. At the end: nil, "eof".
---With {timeout = s} or {block = false}: nil, "timeout" / nil, "empty"
---when nothing complete came (what did come stays for the next read);
---{block = false} with a count returns what is there now.
---s:read(n, {into = b}) reads into the ipc.buffer b instead of a new
---string and returns the count read (nil, "eof" at the end; b is then empty).
---@param fmt? integer|string
---@param opts? ipc.ReadOpts
---@return string|number|integer|nil data
---@return ipc.Outcome? err "eof", "timeout" or "empty"
function Stream:read(fmt, opts) end

---Writes its arguments (strings, numbers and buffers) in order. A table last is
---the options: {block = false} writes what fits now ("full" otherwise),
---{timeout = s} gives up after s seconds ("timeout"); then the first
---result is the bytes written (nil for none).
---@param ... string|number|ipc.buffer|ipc.WaitOpts
---@return true|integer|nil ok
---@return ipc.Outcome? err "closed", "full" or "timeout"
function Stream:write(...) end

---Iterates over the lines until the end of the stream.
---@return fun(): string?
function Stream:lines() end

function Stream:close() end

---A pipe: one direction, common origin (declared before the processes).
---@class ipc.pipe: ipc.Stream
local pipe = {}

---@param opts? ipc.PipeOpts
---@return ipc.pipe
function ipc.pipe(opts) end

---A named pipe: f:open("r" | "w") gives a stream.
---@class ipc.fifo
---@field path string
local fifo = {}

---@param name string
---@param opts? ipc.FifoOpts
---@return ipc.fifo
function ipc.fifo(name, opts) end

---Opens one end; waits for the other end as open(2) does.
---@param mode '"r"'|'"w"'
---@param opts? ipc.WaitOpts
---@return ipc.fifo.stream|nil stream
---@return ipc.Outcome? err "timeout"
function fifo:open(mode, opts) end

---@class ipc.fifo.stream: ipc.Stream
local fifo_stream = {}

-- ---------------------------------------------------------------------------
-- Kernel objects

---A POSIX message queue: highest priority first.
---@class ipc.mqueue
---@field name? string the kernel name when public
---@field capacity integer
---@field msgsize integer
local mqueue = {}

---@param name string
---@param opts? ipc.MqueueOpts
---@return ipc.mqueue
function ipc.mqueue(name, opts) end

---@param bytes string
---@param opts? ipc.MqSendOpts
---@return true|nil ok
---@return ipc.Outcome? err "full" or "timeout"
function mqueue:send(bytes, opts) end

---@param opts? ipc.WaitOpts
---@return string|nil bytes
---@return integer|ipc.Outcome priority_or_err
function mqueue:receive(opts) end

---The messages queued now (mq_curmsgs; a snapshot).
---@return integer
function mqueue:len() end

---Closes this process's descriptor (mq_close), in a process body: later
---calls on q here raise; other processes keep theirs, and nobody is told.
function mqueue:close() end

---A counting semaphore.
---@class ipc.semaphore
local semaphore = {}

---@param name string
---@param initial integer
---@return ipc.semaphore
function ipc.semaphore(name, initial) end

---Decrements, waiting while the value is 0.
---@param opts? ipc.WaitOpts
---@return true|nil ok
---@return ipc.Outcome? err "timeout" or "empty"
function semaphore:wait(opts) end

---@return true|nil ok
---@return ipc.Outcome? err "empty"
function semaphore:trywait() end

---@param n? integer default 1
---@return true
function semaphore:post(n) end

---@return integer
function semaphore:value() end

---Mutual exclusion between processes.
---@class ipc.mutex
local mutex = {}

---@param name string
---@return ipc.mutex
function ipc.mutex(name) end

---@param opts? ipc.WaitOpts
---@return true|nil ok
---@return string? why '"owner-died"' when the last holder died holding it; or an outcome
function mutex:lock(opts) end

---By a process that does not hold it: an error.
function mutex:unlock() end

---Locks, calls fn(...), unlocks (also on error); returns fn's results.
---@generic R
---@param fn fun(...): R
---@param ... any
---@return R
function mutex:with(fn, ...) end

---How a process ended: what ipc.wait returns and a DOWN message's body.
---@class ipc.EndStatus
---@field name string
---@field ok boolean exit 0, no signal, no error
---@field exit? integer the exit code (nil when a signal killed it)
---@field signal? string "SIGKILL", ...
---@field error? string its error message

---Blocks until process name has ended (at once if it has).
---@param name string
---@param opts? ipc.WaitOpts
---@return ipc.EndStatus|nil status
---@return ipc.Outcome? err "timeout" or "empty"
function ipc.wait(name, opts) end

---When process name ends (at once if it has), a message
---{type = "DOWN", src = "main", body = ipc.EndStatus} arrives in this
---process's inbox.
---@param name string
function ipc.monitor(name) end

---Starts a new instance of a template (ipc.process(name, {spawn = true}, fn))
---at run time, from a process body: a real process with every declared
---object, reachable by direct links at once. args (the template's args when
---nil) is its self.args and may carry descriptors. Counts against --max-procs.
---@param template string
---@param args? any
---@param opts? ipc.SpawnOpts
---@return string name the instance's name ("template.N" or opts.name)
function ipc.spawn(template, args, opts) end

---A condition variable used with a mutex (Mesa semantics: re-check the
---condition in a loop around wait).
---@class ipc.cond
local cond = {}

---@param name string
---@return ipc.cond
function ipc.cond(name) end

---Unlocks m (held by this process), sleeps until signalled, locks m again
---before returning, also after a timeout.
---@param m ipc.mutex
---@param opts? ipc.WaitOpts timeout only
---@return true|nil ok
---@return string? why '"owner-died"' (m's last holder died holding it) or "timeout"
function cond:wait(m, opts) end

---Wakes the waiter that has waited longest, if any.
function cond:signal() end

---Wakes every waiter.
function cond:broadcast() end

---A reusable barrier for n parties.
---@class ipc.barrier
local barrier = {}

---@param name string
---@param n integer parties per phase
---@return ipc.barrier
function ipc.barrier(name, n) end

---Waits until n parties have arrived; serial is true for one party per
---phase. "closed": a party died inside the barrier.
---@param opts? ipc.WaitOpts
---@return true|nil ok
---@return boolean|ipc.Outcome serial_or_err "closed", "timeout" or "empty"
function barrier:wait(opts) end

---Named numeric variables in shared memory: v.field, v.array[i], and
---atomic updates by field name. Fields are laid out sorted by name, each
---aligned to its size.
---@class ipc.shared
local shared = {}

---@param name string
---@param fields table<string, ipc.MemType|{[1]: ipc.MemType, [2]: integer}>
---@return ipc.shared
function ipc.shared(name, fields) end

---Atomic add; an array field takes an index (1-based) before the delta.
---@param field string
---@param ... number [i,] delta
---@return number new
function shared:add(field, ...) end

---Atomic compare-and-swap: [i,] old, new.
---@param field string
---@param ... number
---@return boolean
function shared:cas(field, ...) end

---Atomic: raised to x if x is greater; returns the value before.
---@param field string
---@param ... number [i,] x
---@return number before
function shared:max(field, ...) end

---Atomic: lowered to x if x is smaller; returns the value before.
---@param field string
---@param ... number [i,] x
---@return number before
function shared:min(field, ...) end

---Atomic exchange; returns the value before.
---@param field string
---@param ... number [i,] x
---@return number before
function shared:swap(field, ...) end

---Where a field (element i of an array) lives in the bytes.
---@param field string
---@param i? integer
---@return integer offset
---@return ipc.MemType type
function shared:offset(field, i) end

---The raw bytes, as ipc.shm's read.
---@param off integer
---@param n integer
---@return string
function shared:read(off, n) end

---@return integer bytes
function shared:size() end

---An array field of an ipc.shared: a[i] (1-based), a[i] = x, #a.
---@class ipc.shared.array
local shared_array = {}

---Zero-filled bytes shared by every process.
---@class ipc.shm
local shm = {}

---@param name string
---@param size integer bytes
---@return ipc.shm
function ipc.shm(name, size) end

---The n bytes at off as a string; with {into = b}, copied into the
---ipc.buffer b instead, returning n.
---@param off integer byte offset from 0
---@param n integer
---@param opts? {into: ipc.buffer}
---@return string|integer
function shm:read(off, n, opts) end

---@param off integer
---@param bytes string|ipc.buffer
function shm:write(off, bytes) end

---@return integer
function shm:size() end

---@param t ipc.MemType
---@param off integer
---@return number
function shm:get(t, off) end

---@param t ipc.MemType
---@param off integer
---@param v number
function shm:set(t, off, v) end

---Atomic; off aligned to the type's size.
---@param t ipc.MemType
---@param off integer
---@param delta number
---@return number new
function shm:add(t, off, delta) end

---Atomic compare-and-swap; off aligned to the type's size.
---@param t ipc.MemType
---@param off integer
---@param old number
---@param new number
---@return boolean swapped
function shm:cas(t, off, old, new) end

---Memory this process owns to read bytes into, instead of a new string per
---read: s:read(n, {into = b}), mem:read(off, n, {into = b}). #b is the
---bytes it holds; tostring(b) is them as a string. Anything that takes
---bytes (write, mem:write, q:send) takes a buffer.
---@class ipc.buffer
local buffer = {}

---@param capacity integer bytes, 1 to 2^30
---@return ipc.buffer
function ipc.buffer(capacity) end

---The bytes i..j (as string.sub; all of them by default) as a new string.
---@param i? integer
---@param j? integer
---@return string
function buffer:string(i, j) end

---The bytes i..j as numbers (as string.byte; the first by default), at
---most 1024 at once.
---@param i? integer
---@param j? integer
---@return integer ...
function buffer:byte(i, j) end

---@return integer bytes the most it can hold
function buffer:capacity() end

-- ---------------------------------------------------------------------------
-- Sockets

---@class ipc.listener
---@field kind '"unix"'|'"tcp"'|'"udp"'
---@field address string the bound address ("127.0.0.1:40213")
local listener = {}

---Bound when declared ("127.0.0.1:0" gets a free port; a unix name without
---a / lives in the run directory). A tcp listener takes only the run's own
---processes (ipc.connect to l.address sends the run's hello) unless public.
---@param kind '"unix"'|'"tcp"'|'"udp"'
---@param address string
---@param opts? {public?: boolean}
---@return ipc.listener
function ipc.listen(kind, address, opts) end

---@param opts? ipc.WaitOpts
---@return ipc.conn|nil conn
---@return ipc.Outcome? err
function listener:accept(opts) end

---UDP: sends one datagram.
---@param address string
---@param bytes string
function listener:sendto(address, bytes) end

---UDP: receives one datagram.
---@param opts? ipc.WaitOpts
---@return string|nil bytes
---@return string|ipc.Outcome address_or_err
function listener:recvfrom(opts) end

---@param kind '"unix"'|'"tcp"'|'"udp"'
---@param address string
---@param opts? ipc.ConnectOpts
---@return ipc.conn|nil conn
---@return ipc.Outcome? err "timeout"
function ipc.connect(kind, address, opts) end

---A connection: a byte stream, and framed messages (a little-endian u32
---length, then the message; docs/LUA_API.md "The wire format").
---@class ipc.conn: ipc.Stream
local conn = {}

---@param body any
---@param opts? ipc.SendOpts
---@return true|nil ok
---@return ipc.Outcome? err
function conn:send(body, opts) end

---The next framed message; msg.peer is the connection's remote address, and
---msg.src "outside" for a program that is no process of the run. A body
---that cannot be decoded gives nil, "invalid", why (naming the sender).
---@param opts? ipc.WaitOpts
---@return ipc.SocketMessage|nil msg
---@return ipc.Outcome? err "timeout", "empty", "closed" or "invalid"
---@return string? why for "invalid": what was wrong and who sent it
function conn:receive(opts) end

---A UDP connection: read returns one datagram.
---@class ipc.conn.udp: ipc.conn
local conn_udp = {}

---@param fmt? integer|string
---@param opts? ipc.WaitOpts
---@return string|nil datagram
---@return ipc.Outcome? err
function conn_udp:read(fmt, opts) end

-- ---------------------------------------------------------------------------
-- report.trace: the recorded run, with checks over it. A check returns true,
-- or false and an explanation (ipc.expect takes the pair as it is).

---@class ipc.TraceFilter
---@field proc? string
---@field object? string
---@field kind? string an operation ("send") or an object kind ("mailbox")
---@field label? string

---@alias ipc.Selection string|ipc.TraceFilter a label, or a filter

---@class ipc.trace
---@field path? string where the trace was written
local trace = {}

---@param filter? ipc.Selection
---@return table[] events
function trace:events(filter) end

---@param filter? ipc.Selection
---@return integer
function trace:count(filter) end

---@param filter ipc.Selection
---@return ipc.trace
function trace:filter(filter) end

---@param label string
---@param reader_label? string
---@return boolean ok
---@return string? explanation
function trace:exclusive(label, reader_label) end

---@param box string
---@return boolean ok
---@return string? explanation
function trace:each_once(box) end

---@param box string
---@return boolean ok
---@return string? explanation
function trace:fifo(box) end

---@param a ipc.Selection
---@param b ipc.Selection
---@return boolean ok
---@return string? explanation
function trace:happens_before(a, b) end

---@param a ipc.Selection
---@param b ipc.Selection
---@return boolean ok
---@return string? explanation
function trace:concurrent(a, b) end

---@param label string
---@param n integer
---@return boolean ok
---@return string? explanation
function trace:bounded(label, n) end

---@param process string
---@param share? number default 0.5
---@return boolean ok
---@return string? explanation
function trace:progress(process, share) end

---@return string[] explanations (empty when there is none)
function trace:races() end

---@param object string
---@param model string|table
---@return boolean ok
---@return string? explanation
function trace:linearizable(object, model) end

return ipc
