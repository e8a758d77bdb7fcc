package bindings

import (
	"fmt"
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/internal/luatable"
	"github.com/ipcscript/ipcscript/ipc"
)

// Preload makes `require("ipc")` return the module bound to env.
func Preload(L *lua.LState, env *Env) {
	// The key made once, as the module's (moduleKeys), when package.preload
	// has none yet.
	if pkg, ok := L.GetGlobal("package").(*lua.LTable); ok {
		if preload, ok := pkg.RawGetString("preload").(*lua.LTable); ok {
			luatable.Expect(preload, preloadKeys, 2)
		}
	}
	L.PreloadModule("ipc", Loader(env))
}

// Loader is the loader of the module bound to env, as package.preload.ipc
// holds it (Preload): it returns the module.
func Loader(env *Env) lua.LGFunction {
	return func(L *lua.LState) int {
		L.Push(newModule(L, env))
		return 1
	}
}

// PreloadInto is Preload for preload, the package.preload table of a
// state whose package library has just opened (and has no key yet).
func PreloadInto(L *lua.LState, preload *lua.LTable, loader lua.LGFunction) {
	luatable.Expect(preload, preloadKeys, 2)
	preload.RawSetString("ipc", L.NewFunction(loader))
}

var preloadKeys = []lua.LValue{lua.LString("ipc")}

// newModule builds the ipc table: each entry of kinds adds its functions
// and registers its userdata types.
func newModule(L *lua.LState, env *Env) *lua.LTable {
	// Sized for its names, and with them in its key order already
	// (moduleKeys), with no array part.
	mod := luatable.New(0)
	luatable.Expect(mod, moduleKeys, 0)
	// The module's functions are made in one allocation (setFunc), not
	// one each.
	env.funcs = make([]lua.LFunction, 0, moduleFuncsHint)
	for _, k := range outcomeNames {
		mod.RawSetString(k.name, k.value)
	}
	env.classes = pendingClasses(L)
	for _, open := range kinds {
		open(L, mod, env)
	}
	env.classes = nil
	strictModule(L, mod) // ipc.mailbx: did you mean ipc.mailbox?
	return mod
}

// outcomeNames are the module's constants (ipc.TIMEOUT == "timeout"), as
// Lua values made once rather than by each child.
var outcomeNames = [...]struct {
	name  string
	value lua.LValue
}{
	{"TIMEOUT", lua.LString("timeout")}, {"EMPTY", lua.LString("empty")}, {"FULL", lua.LString("full")},
	{"CLOSED", lua.LString("closed")}, {"EOF", lua.LString("eof")}, {"INVALID", lua.LString("invalid")},
}

// namedFunc is a method of a class, in a list laid out by the compiler
// (a map literal is built at run time, by every process).
type namedFunc struct {
	name string
	fn   lua.LGFunction
}

// funcMap is fs as a methods map, with room for extra more.
func funcMap(fs []namedFunc, extra int) map[string]lua.LGFunction {
	m := make(map[string]lua.LGFunction, len(fs)+extra)
	for _, f := range fs {
		m[f.name] = f.fn
	}
	return m
}

// moduleKeys are the module's names, in the order newModule sets them
// (TestModuleHints): set, each costs no allocation (luatable.Expect),
// where gopher-lua boxes a new key twice, ~70 allocations of a child's
// start.
var moduleKeys = []lua.LValue{
	lua.LString("TIMEOUT"), lua.LString("EMPTY"), lua.LString("FULL"), lua.LString("CLOSED"), lua.LString("EOF"), lua.LString("INVALID"),
	lua.LString("process"), lua.LString("run"), lua.LString("self"), lua.LString("sleep"), lua.LString("now"), lua.LString("log"),
	lua.LString("expect"), lua.LString("mark"), lua.LString("span"), lua.LString("spawn"),
	lua.LString("pipe"),
	lua.LString("send"), lua.LString("receive"), lua.LString("link"), lua.LString("mailbox"), lua.LString("select"), lua.LString("inbox"),
	lua.LString("wait"), lua.LString("monitor"), lua.LString("fifo"), lua.LString("mqueue"), lua.LString("semaphore"),
	lua.LString("mutex"), lua.LString("cond"), lua.LString("barrier"), lua.LString("shm"), lua.LString("buffer"), lua.LString("shared"),
	lua.LString("listen"), lua.LString("connect"),
}

// moduleFuncsHint is how many of the module's functions setFunc makes
// (TestModuleHints): those past it are made one by one.
const moduleFuncsHint = 29

// setFunc sets t[name] to a Go function, taken from the functions made for
// the module at once while newModule runs (as L.NewFunction makes it: a Go
// function in the global environment, without upvalues).
func (e *Env) setFunc(L *lua.LState, t *lua.LTable, name string, fn lua.LGFunction) {
	if len(e.funcs) == cap(e.funcs) {
		t.RawSetString(name, L.NewFunction(fn))
		return
	}
	e.funcs = append(e.funcs, lua.LFunction{IsG: true, Env: L.Env, GFunction: fn})
	t.RawSetString(name, &e.funcs[len(e.funcs)-1])
}

// kinds opens the module's functions and object kinds, in this order (as
// gopher-lua's linit.go lists its libraries). A new kind is one file with
// its open function, plus a line here.
var kinds = []func(L *lua.LState, mod *lua.LTable, env *Env){
	openProcess,   // process, run, self, sleep, now, log, expect (process.go)
	openPipe,      // pipe (pipe.go)
	openMessaging, // send, receive, link, inbox, mailbox, select (messenger.go)
	openMonitor,   // wait, monitor (monitor.go)
	openFifo,      // fifo (fifo.go)
	openMqueue,    // mqueue (mqueue.go)
	openSemaphore, // semaphore (semaphore.go)
	openMutex,     // mutex (mutex.go)
	openCond,      // cond (cond.go)
	openBarrier,   // barrier (barrier.go)
	openShm,       // shm (shm.go)
	openBuffer,    // buffer (buffer.go)
	openShared,    // shared (shared.go)
	openSocket,    // listen, connect (socket.go)
}

// Outcome converts an ipc error into the Lua convention: expected outcomes
// become `nil, "timeout"` etc.; anything else raises a Lua error.
func Outcome(L *lua.LState, err error) int {
	switch err {
	case ipc.ErrTimeout, ipc.ErrEmpty, ipc.ErrFull, ipc.ErrClosed, ipc.ErrEOF:
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.RaiseError("%s", err.Error())
	return 0
}

// WaitOpts reads {timeout = s, block = bool} from the table at index n
// (absent is fine).
func WaitOpts(L *lua.LState, n int) ipc.WaitOpts {
	var w ipc.WaitOpts
	t, ok := L.Get(n).(*lua.LTable)
	if !ok {
		if L.Get(n) != lua.LNil {
			L.ArgError(n, "options must be a table")
		}
		return w
	}
	return waitOptsFrom(L, t)
}

func waitOptsFrom(L *lua.LState, t *lua.LTable) ipc.WaitOpts {
	return waitOptsOf(L, t.RawGetString("timeout"), t.RawGetString("block"))
}

// waitOptsOf reads the values of the options timeout and block.
func waitOptsOf(L *lua.LState, timeout, block lua.LValue) ipc.WaitOpts {
	var w ipc.WaitOpts
	switch v := timeout.(type) {
	case lua.LNumber:
		d, err := Seconds("timeout", float64(v))
		if err != nil {
			L.RaiseError("%s", err.Error())
		}
		w.Timeout = d
		if w.Timeout == 0 {
			w.NonBlocking = true
		}
	case *lua.LNilType:
	default:
		L.RaiseError("timeout must be a number of seconds, got %s", gotValue(v))
	}
	if !boolValue(L, "block", block, true) {
		w.NonBlocking = true
	}
	return w
}

// optTable returns the table at n, or nil when absent; anything else raises.
func optTable(L *lua.LState, n int) *lua.LTable {
	switch v := L.Get(n).(type) {
	case *lua.LTable:
		return v
	case *lua.LNilType:
		return nil
	}
	L.ArgError(n, "options must be a table")
	return nil
}

// optInt reads an integer field; def when absent.
func optInt(L *lua.LState, t *lua.LTable, field string, def int) int {
	if t == nil {
		return def
	}
	switch v := t.RawGetString(field).(type) {
	case lua.LNumber:
		if float64(v) != float64(int(v)) {
			L.RaiseError("%s must be an integer, got %v", field, v)
		}
		return int(v)
	case *lua.LNilType:
		return def
	default:
		L.RaiseError("%s must be a number, got %s", field, gotValue(v))
	}
	return def
}

// optString reads a string field; def when absent.
func optString(L *lua.LState, t *lua.LTable, field, def string) string {
	if t == nil {
		return def
	}
	return stringValue(L, field, t.RawGetString(field), def)
}

// stringValue is optString for a value already read from the table.
func stringValue(L *lua.LState, field string, v lua.LValue, def string) string {
	switch v := v.(type) {
	case lua.LString:
		return string(v)
	case *lua.LNilType:
		return def
	default:
		L.RaiseError("%s must be a string, got %s", field, gotValue(v))
	}
	return def
}

// optBool reads a boolean field; def when absent.
func optBool(L *lua.LState, t *lua.LTable, field string, def bool) bool {
	if t == nil {
		return def
	}
	return boolValue(L, field, t.RawGetString(field), def)
}

// boolValue is optBool for a value already read from the table.
func boolValue(L *lua.LState, field string, v lua.LValue, def bool) bool {
	switch v := v.(type) {
	case lua.LBool:
		return bool(v)
	case *lua.LNilType:
		return def
	default:
		L.RaiseError("%s must be a boolean, got %s", field, gotValue(v))
	}
	return def
}

// newUserData wraps v in userdata of the registered class.
func newUserData(L *lua.LState, class string, v any) *lua.LUserData {
	ud := L.NewUserData()
	ud.Value = v
	L.SetMetatable(ud, classMetatable(L, class))
	return ud
}

// registerClass registers a userdata class with methods and a __tostring.
// Without fields, __index is the methods table itself, so `obj:method()`
// finds its method without a call into Go (~100 ns saved per call: a Lua
// lock/unlock pair is two method calls). With fields, __index is a Go
// function that looks up methods first, then asks fields.
//
// The metatable also holds the methods as __methods, whatever __index is,
// so that tools can list them (the editor stubs' test, types/ipc.lua).
//
// The metatable is made on the class's first use (classMetatable), not
// here: every process of a run requires the module, and most use two or
// three of its eighteen classes. Making them all cost each child ~145 KB
// of tables and functions, a third of what its start allocated.
//
// known, when given, lists every field a class with fields has: any other
// key that is not a method then gives what a class without fields gives
// (a function that raises when called, naming the object and the nearest
// method or field: q:sned() says "did you mean send?").
func registerClass(L *lua.LState, class string, methods map[string]lua.LGFunction, fields func(L *lua.LState, v any, key string) lua.LValue, known ...string) {
	addClass(L, classSpec{class: class, methods: methods, fields: fields, known: known})
}

// classSpec is a registered class whose metatable is not made yet.
type classSpec struct {
	class     string
	methods   map[string]lua.LGFunction
	methodsOf func() map[string]lua.LGFunction // methods, made at first use
	fields    func(L *lua.LState, v any, key string) lua.LValue
	known     []string // the fields' names, when the class lists them
	then      func(mt *lua.LTable)
}

// pendingKey is where the registry keeps the classes not made yet (not
// under an "ipc." name: those are the classes' metatables).
const pendingKey = "ipcscript pending classes"

// pendingClassesHint sizes the pending classes' list for every class the
// module registers (TestModuleHints), so that it is made once
// rather than grown while newModule fills it.
const pendingClassesHint = 24

// pendingList holds the classes not made yet, in one slice (looked up by
// name at a class's first use only: a map and a spec per class cost each
// child more than the few lookups).
type pendingList struct{ specs []classSpec }

func pendingClasses(L *lua.LState) *pendingList {
	reg := L.Get(lua.RegistryIndex).(*lua.LTable)
	if ud, ok := reg.RawGetString(pendingKey).(*lua.LUserData); ok {
		return ud.Value.(*pendingList)
	}
	pl := &pendingList{specs: make([]classSpec, 0, pendingClassesHint)}
	ud := L.NewUserData()
	ud.Value = pl
	reg.RawSetString(pendingKey, ud)
	return pl
}

// The module's kinds register their classes through env, with the pending
// list newModule looked up once (one registry lookup per class was ~3k
// instructions of a child's start): registerClass, and its variants below.
func (e *Env) registerClass(L *lua.LState, class string, methods map[string]lua.LGFunction, fields func(L *lua.LState, v any, key string) lua.LValue, known ...string) {
	e.addClass(L, classSpec{class: class, methods: methods, fields: fields, known: known})
}

// registerClassOf is registerClass with the methods made by a function
// called on the class's first use: a map literal is built each time it is
// evaluated, and most processes never use most classes.
func (e *Env) registerClassOf(L *lua.LState, class string, methods func() map[string]lua.LGFunction, fields func(L *lua.LState, v any, key string) lua.LValue, known ...string) {
	e.addClass(L, classSpec{class: class, methodsOf: methods, fields: fields, known: known})
}

// registerClassThen is registerClassOf, with then called on the metatable
// once it is made (to add __newindex and the like).
func (e *Env) registerClassThen(L *lua.LState, class string, methods func() map[string]lua.LGFunction, fields func(L *lua.LState, v any, key string) lua.LValue, then func(mt *lua.LTable)) {
	e.addClass(L, classSpec{class: class, methodsOf: methods, fields: fields, then: then})
}

func (e *Env) addClass(L *lua.LState, spec classSpec) {
	pl := e.classes
	if pl == nil {
		pl = pendingClasses(L)
	}
	pl.add(spec)
}

// addClass registers spec, replacing a pending class of the same name.
func addClass(L *lua.LState, spec classSpec) {
	pendingClasses(L).add(spec)
}

// add adds spec, replacing a pending class of the same name.
func (pl *pendingList) add(spec classSpec) {
	if i := pl.find(spec.class); i >= 0 {
		pl.specs[i] = spec
		return
	}
	pl.specs = append(pl.specs, spec)
}

func (pl *pendingList) find(class string) int {
	for i := range pl.specs {
		if pl.specs[i].class == class {
			return i
		}
	}
	return -1
}

// take removes the pending class at i and returns it.
func (pl *pendingList) take(i int) classSpec {
	spec := pl.specs[i]
	last := len(pl.specs) - 1
	pl.specs[i] = pl.specs[last]
	pl.specs[last] = classSpec{}
	pl.specs = pl.specs[:last]
	return spec
}

// names lists the pending classes.
func (pl *pendingList) names() []string {
	names := make([]string, len(pl.specs))
	for i := range pl.specs {
		names[i] = pl.specs[i].class
	}
	return names
}

// classMetatable is the metatable of a registered class, made now if this
// is its first use.
func classMetatable(L *lua.LState, class string) lua.LValue {
	if mt := L.GetTypeMetatable(class); mt != lua.LNil {
		return mt
	}
	pending := pendingClasses(L)
	i := pending.find(class)
	if i < 0 {
		return lua.LNil
	}
	spec := pending.take(i)
	return makeClass(L, class, &spec)
}

// makeClasses makes every class still pending (for tools that list them).
func makeClasses(L *lua.LState) {
	for _, class := range pendingClasses(L).names() {
		classMetatable(L, class)
	}
}

func makeClass(L *lua.LState, class string, spec *classSpec) *lua.LTable {
	methods, fields := spec.methods, spec.fields
	if spec.methodsOf != nil {
		methods = spec.methodsOf()
	}
	// As L.NewTypeMetatable(class) (classMetatable found none), but sized
	// for its few fields: __methods, __index, __tostring and what then adds.
	mt := metatable(classKeys)
	L.SetField(L.Get(lua.RegistryIndex), class, mt)
	idx := luatable.New(len(methods))
	L.SetFuncs(idx, methods)
	L.SetField(mt, "__methods", idx)
	if fields == nil {
		strictMethods(L, idx) // obj:recieve(): did you mean receive?
	}
	if fields == nil {
		L.SetField(mt, "__index", idx)
	} else {
		L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int {
			ud := L.CheckUserData(1)
			key := L.CheckString(2)
			if m := idx.RawGetString(key); m != lua.LNil {
				L.Push(m)
				return 1
			}
			if len(spec.known) > 0 && !slices.Contains(spec.known, key) {
				L.Push(noSuchMember(L, key, append(tableKeys(idx), spec.known...)))
				return 1
			}
			L.Push(fields(L, ud.Value, key))
			return 1
		}))
	}
	L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
		ud := L.CheckUserData(1)
		if s, ok := ud.Value.(fmt.Stringer); ok {
			L.Push(lua.LString(s.String()))
		} else {
			L.Push(lua.LString(class))
		}
		return 1
	}))
	if spec.then != nil {
		spec.then(mt)
	}
	return mt
}

// The keys of metatables, made once (luatable.Expect): a class's, in the
// order makeClass sets them, and one with __index alone.
var (
	classKeys = []lua.LValue{lua.LString("__methods"), lua.LString("__index"), lua.LString("__tostring")}
	indexKey  = classKeys[1:2]
)

// metatable is a new table ready for keys, with room for one more (what
// a class's then adds).
func metatable(keys []lua.LValue) *lua.LTable {
	mt := luatable.New(0)
	luatable.Expect(mt, keys, 1)
	return mt
}

// checkClass returns the userdata value at n if it is of class, else raises.
func checkClass[T any](L *lua.LState, n int, what string) T {
	ud, ok := L.Get(n).(*lua.LUserData)
	if ok {
		if v, ok := ud.Value.(T); ok {
			return v
		}
	}
	var zero T
	L.ArgError(n, what+" expected, got "+typeName(L.Get(n)))
	return zero
}

func typeName(v lua.LValue) string {
	if ud, ok := v.(*lua.LUserData); ok {
		if s, ok := ud.Value.(fmt.Stringer); ok {
			return strings.SplitN(s.String(), " ", 2)[0]
		}
	}
	return v.Type().String()
}

// gotValue names a wrong option value for an error message: its type and,
// for a string, number or boolean, the value itself (`string "5s"`).
func gotValue(v lua.LValue) string {
	switch v := v.(type) {
	case lua.LString:
		s := string(v)
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return fmt.Sprintf("string %q", s)
	case lua.LNumber, lua.LBool:
		return v.Type().String() + " " + v.String()
	}
	return v.Type().String()
}
