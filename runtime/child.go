package runtime

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/internal/luaload"
	"github.com/ipcscript/ipcscript/ipc"
	"github.com/ipcscript/ipcscript/trace"
)

// IsChild reports whether this process was launched by a run as one of its
// processes.
func IsChild() bool { return inChild || os.Getenv(envChild) != "" }

// inChild is set by Child, which removes envChild from the environment.
var inChild bool

// sandboxed is set by Child when the run is under --sandbox.
var sandboxed bool

// Child must be called at the very top of main by every binary that runs
// scripts (the reexec pattern): when this process is a child of a run, it
// runs that child's part of the script and exits; otherwise it returns at
// once. opts.Modules must be the same as the parent's.
func Child(opts Options) {
	if !IsChild() {
		return
	}
	inChild = true
	manifest := os.Getenv(envChild)
	// Read once: programs the script starts (os.execute, io.popen) must
	// not believe they are children of a run themselves.
	os.Unsetenv(envChild)
	NotDumpable() // other processes of the user cannot open our objects (isolation_linux.go)
	childReaper() // nothing this process starts outlives it (reaper_linux.go)
	if len(opts.Modules) > 0 {
		childSignals() // Go modules may start programs at any time
	}
	_, sandboxed = os.LookupEnv(envSandbox)
	if err := childSandbox(manifest); err != nil { // sandbox_linux.go
		fmt.Fprintf(os.Stderr, "ipcscript: --sandbox: %v\n", err)
		os.Exit(ExitFailed)
	}
	growStack()
	code := runChild(manifest, opts)
	endChildDescendants()
	os.Exit(code)
}

func runChild(manifest string, opts Options) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "ipcscript: "+format+"\n", args...)
		return ExitFailed
	}
	mp, err := decodeManifest(manifest)
	if err != nil {
		return fail("%s is set but is not a run manifest (%v); it is set by ipcscript for its own child processes: unset it to run this program directly", envChild, err)
	}
	m := *mp
	var st unix.Stat_t
	if err := unix.Fstat(m.Ctl, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fail("this program was started as process %q of an ipcscript run (%s is set) but not by ipcscript: its control socket (fd %d) is missing; unset %s to run it directly", m.Self, envChild, m.Ctl, envChild)
	}
	sanitizeDescriptors(&m)
	restoreEnviron()
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		// A child's heap is small and churns with every message table it
		// builds: collecting at 4x the live heap instead of 2x measured
		// 3.2-3.8x -> 3.8-5x Python's Queue on mailbox throughput. A soft
		// memory limit keeps that from costing memory under sustained
		// traffic (a consumer of 16 KiB bodies reached 32 MiB of heap):
		// see boundHeap.
		debug.SetGCPercent(400)
		boundHeap()
	}
	if runtime.GOMAXPROCS(0) == 1 {
		// One P, and one goroutine that matters (the Lua state): queue
		// sleeps keep the P while they are short, so that the runtime
		// does not hand it around on every message (ipc.SetHoldP).
		ipc.SetHoldP(true)
	}
	ctl := newCtlClient(m.Ctl)
	go ctl.loop() // the parent check (EOF: the supervisor is gone), and replies to requests
	report := func(r childResult) {
		if len(r.Error) > 50000 {
			r.Error = r.Error[:50000] + "...(truncated)"
		}
		if len(r.Traceback) > 8000 {
			r.Traceback = r.Traceback[:8000] + "\n\t...(truncated)"
		}
		if len(r.Failed) > 100 {
			r.Failed = append(r.Failed[:100], fmt.Sprintf("... and %d more", len(r.Failed)-100))
		}
		if b := r.encode(); b != nil { // nil: a plain success, which the exit says
			unix.Write(m.Ctl, b)
		}
	}

	region, err := ipc.OpenRegion(os.NewFile(uintptr(m.Status), "status"))
	if err != nil {
		return fail("process %q: status table (fd %d): %v", m.Self, m.Status, err)
	}
	// Close through the *os.File, never the raw number: the File's finalizer
	// would close the number again later, by then maybe the Go runtime's
	// own epoll descriptor (it crashed a child reading a socket this way).
	srcFile := os.NewFile(uintptr(m.Source), "source")
	src, err := readScriptImage(srcFile)
	srcFile.Close()
	if err != nil {
		return fail("process %q: script source (fd %d): %v", m.Self, m.Source, err)
	}
	status := ipc.OpenStatusTable(region)
	self := -1 // this process's slot, found in the same walk of m.Procs
	for i := range m.Procs {
		p := &m.Procs[i]
		if p.Slot >= status.Len() {
			return fail("process %q: the status table (fd %d) has %d slots, no slot %d for %q: not this run's", m.Self, m.Status, status.Len(), p.Slot, p.Name)
		}
		if p.Name == m.Self {
			self = p.Slot
		}
	}

	// A registry that grows from small: half the allocation of the default
	// at start, which a child pays on every launch. The standard libraries
	// open on first use (stdlib.go), but under --sandbox, where restrictLua
	// edits them first.
	L := lua.NewState(lua.Options{RegistrySize: 1024, RegistryMaxSize: 1 << 20, RegistryGrowStep: 1024, SkipOpenLibs: !sandboxed})
	env := &bindings.Env{Host: bindings.ChildHost(&m), Script: m.Script, Args: m.Args, Manifest: &m, Status: status, Log: os.Stderr, Broker: ctl, Secret: os.Getenv(envRun)}
	if self >= 0 {
		env.Slot = status.Slot(self)
		atomic.StoreInt32(&env.Slot.Pid, int32(os.Getpid()))
	}
	// Where a wait began, for a timeout's report: the script line of the
	// blocking call, recorded only when the call is about to sleep.
	ipc.EnterHook = func(s *ipc.WaitStatus) { atomic.StoreInt32(&s.Line, int32(scriptLine(L, m.Script))) }
	if m.TraceBuf != 0 {
		rec, err := openRecorder(&m)
		if err != nil {
			return fail("process %q: trace: %v", m.Self, err)
		}
		env.Trace = rec
	}
	var libs *lazyLibs
	if sandboxed {
		openRandom(L)
		luaload.Open(L)
		restrictLua(L, func() string { return m.RunDir })
		for _, lib := range []string{lua.OsLibName, lua.IoLibName} {
			if t, ok := L.GetGlobal(lib).(*lua.LTable); ok {
				guardForks(L, lib, t)
			}
		}
	} else {
		libs = openLibsLazily(L, map[string]func(*lua.LState, *lua.LTable){
			lua.MathLibName: openRandomIn,
			lua.OsLibName:   func(L *lua.LState, t *lua.LTable) { guardForks(L, lua.OsLibName, t) },
			lua.IoLibName:   func(L *lua.LState, t *lua.LTable) { guardForks(L, lua.IoLibName, t) },
		})
		luaload.Open(L)
	}
	if libs != nil {
		env.OpenLazy = func(t *lua.LTable) { libs.open(L, t) }
		libs.preload(bindings.Loader(env), opts.Modules) // when package opens
	} else {
		bindings.Preload(L, env)
		for n, mod := range opts.Modules {
			L.PreloadModule(n, mod)
		}
	}
	setArgs(L, m.Script, m.Args)

	stopProfile := startProfile(m.Self)
	exit := func(r childResult) int {
		endChildDescendants()
		stopProfile()
		flushStdout(L, libs)
		report(r)
		if r.Error != "" {
			return ExitFailed
		}
		return ExitOK
	}
	// ipc.run() in a child: check the declarations, run the body, exit.
	env.Run = func(L *lua.LState, o bindings.RunOptions) lua.LValue {
		if err := env.CheckComplete(); err != nil {
			os.Exit(exit(childResult{Error: err.Error()}))
		}
		if err := env.StartSpawned(L); err != nil {
			os.Exit(exit(childResult{Error: err.Error()}))
		}
		body := o.Main // the run's main process (ipc.run{main = fn})
		if m.Self != bindings.ParentName {
			if env.Self == nil {
				os.Exit(exit(childResult{Error: fmt.Sprintf("declarations differ between the parent and this process: no process named %q was declared", m.Self)}))
			}
			body = env.Self.Fn
		} else if body == nil {
			os.Exit(exit(childResult{Error: "declarations differ between the parent and this process: ipc.run has no main function here"}))
		}
		env.Running()
		if env.Trace != nil {
			env.Trace.Record(&trace.Event{Op: trace.OpStart, Time: trace.Now()})
		}
		L.Push(body)
		L.Push(env.SelfTable(L))
		if err := L.PCall(1, 0, nil); err != nil {
			os.Exit(exit(childResult{Error: luaMessage(L, err), Traceback: luaTraceback(err), Failed: env.Failed}))
		}
		os.Exit(exit(childResult{Failed: env.Failed}))
		return lua.LNil
	}
	fn, err := loadScriptImage(L, src, m.Script)
	if err != nil {
		return exit(childResult{Error: loadMessage(err)})
	}
	L.Push(fn)
	if err := L.PCall(0, 0, nil); err != nil {
		return exit(childResult{Error: luaMessage(L, err), Traceback: luaTraceback(err)})
	}
	// The script ended without ipc.run(): run as if it had called it.
	env.Run(L, bindings.RunOptions{})
	return ExitOK
}

// guardForks makes os.execute and io.popen, the script's ways to start a
// program, install the child's signal handler first (childSignals): lib
// is the os or the io library's table.
func guardForks(L *lua.LState, name string, lib *lua.LTable) {
	fn := map[string]string{lua.OsLibName: "execute", lua.IoLibName: "popen"}[name]
	orig, ok := lib.RawGetString(fn).(*lua.LFunction)
	if !ok || !orig.IsG {
		return // removed (--sandbox) or replaced
	}
	g := orig.GFunction
	lib.RawSetString(fn, L.NewFunction(func(L *lua.LState) int {
		childSignals()
		return g(L)
	}))
}

// scriptLine is the current line of the innermost function of the script
// on L's call stack (the caller of the Go function that blocks), or 0. It
// runs before every sleep (ipc.EnterHook), so it starts at level 1: level
// 0 is that Go function, which has no line (its GetStack and GetInfo were
// half of this function's cost, ~1.8% of a pinned round trip).
func scriptLine(L *lua.LState, script string) int {
	if line, ok := bindings.CallerLine(L, script); ok {
		return line // the common case, read without GetStack's allocations
	}
	for level := 1; level < 9; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			return 0
		}
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err != nil {
			return 0
		}
		if dbg.CurrentLine > 0 && dbg.Source == script {
			return dbg.CurrentLine
		}
	}
	return 0
}

// flushStdout flushes io.write buffering a script may have turned on:
// io.stdout:flush(), whatever io.stdout is now, its errors ignored. (It
// was the chunk "pcall(function() io.stdout:flush() end)", compiled at
// every exit: 47 µs and 53 KB of a child's ~1.5 ms start.)
func flushStdout(L *lua.LState, libs *lazyLibs) {
	io, ok := L.GetGlobal("io").(*lua.LTable)
	if !ok || libs.unopened(io) { // never opened: nothing buffered
		return
	}
	out := L.GetField(io, "stdout")
	switch out.(type) {
	case *lua.LUserData, *lua.LTable:
	default:
		return
	}
	flush := L.GetField(out, "flush")
	if flush.Type() != lua.LTFunction {
		return
	}
	L.Push(flush)
	L.Push(out)
	L.PCall(1, 0, nil)
}

// sanitizeDescriptors marks the manifest's descriptors close-on-exec, so a
// program the script starts (os.execute, io.popen) gets none of them. (The
// supervisor marked what it inherited itself close-on-exec before launch,
// so nothing else reached this child.)
func sanitizeDescriptors(m *bindings.Manifest) {
	// Above stderr this process holds only the manifest's descriptors and
	// the Go runtime's own (close-on-exec already): one close_range marks
	// them all, where a call per descriptor cost a child of a 64-process
	// run 67 fcntl calls (it holds every process's inbox). The loop below
	// is for kernels before 5.11.
	if unix.CloseRange(3, uint(^uint32(0)), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	unix.CloseOnExec(m.Ctl)
	unix.CloseOnExec(m.Status)
	unix.CloseOnExec(m.Source)
	if m.TraceBuf != 0 {
		unix.CloseOnExec(m.TraceBuf)
		unix.CloseOnExec(m.TraceBoard)
	}
	for _, ds := range [][]bindings.ManifestDecl{m.Decls, m.Implicit} {
		for _, d := range ds {
			for _, f := range d.FDs {
				unix.CloseOnExec(f.FD)
			}
		}
	}
}

// envCPUProfile names the file prefix of per-process CPU profiles
// (startProfile, in profile_on.go or profile_off.go).
const envCPUProfile = "IPCSCRIPT_CPUPROFILE"

// The supervisor starts children with GOMAXPROCS=1 (launch.go): a child
// runs one Lua state, and with one P its runtime starts fewer threads and
// hands its P around less while it sleeps in a futex (measured on a
// 256-process token ring: -35% per hop; on launch, -24% CPU per child).
// It says so in envUnset, so that the child removes what it added before
// the script can see the environment or start programs with it.
const envUnset = "IPCSCRIPT_UNSET"

// restoreEnviron removes the variables the supervisor added for this
// child's Go runtime alone.
func restoreEnviron() {
	v, ok := os.LookupEnv(envUnset)
	if !ok {
		return
	}
	for _, name := range strings.Split(v, ",") {
		if name != "" {
			os.Unsetenv(name)
		}
	}
	os.Unsetenv(envUnset)
}

// Heap bound of a child: the soft memory limit is heapFloor or 3x the heap
// live after the latest collection, whichever is larger, so a script with
// little live data stays within a few MiB of heapFloor whatever the traffic
// (with GOGC=400 alone the heap grows to 5x live, at least 16 MiB), and a
// script that keeps a lot of data is collected at 3x its live heap rather
// than thrashing against a fixed limit. 10 MiB, not 12: the GC pacer
// budgets scan work for every byte of data and bss, and until crypto/rand
// left the binary that was 33 MiB (a FIPS scratch buffer), which started
// each cycle early; without it the 12 MiB floor let a 16 KiB-body consumer
// peak at 20-25 MiB RSS (1 GiB through cap 64), 10 MiB keeps it at 14-16.
const heapFloor = 10 << 20

type gcTick struct{ _ *int } // not from the tiny allocator, so it is finalized

func boundHeap() {
	debug.SetMemoryLimit(heapFloor)
	var rearm func()
	rearm = func() {
		// A finalizer runs after the collection that found its object
		// unreachable: one call per GC cycle. The live heap is the heap
		// marked by that collection. (runtime.MemStats.HeapAlloc is no
		// substitute: it still counts the dead objects of spans not yet
		// swept, so 3x it ran away to 34 MiB on a 16 KiB-body consumer.
		// The live heap is read as runtime/metrics does, without that
		// package's start-up cost: see liveHeap.)
		runtime.SetFinalizer(&gcTick{}, func(*gcTick) {
			if live, ok := liveHeap(); ok {
				debug.SetMemoryLimit(max(heapFloor, 3*int64(live)))
			}
			rearm()
		})
	}
	rearm()
}

// growStack grows the calling goroutine's stack to what a child's start
// needs, in one step, while it is shallow. Grown on demand, the stack ran
// out twice deep in the Lua state's calls, each time copied with every
// frame on it adjusted: a child's start spent ~68.7k instructions in 5
// stack growths, ~32.4k in 4 with this (a bare start: ~26.1k in 3;
// callgrind, a 64-process launch). 16 KiB: 32 saved nothing more and
// cost ~4 page faults.
func growStack() {
	var b [16 << 10]byte
	touchStack(b[:])
}

//go:noinline
func touchStack(b []byte) { b[len(b)-1] = 1 }
