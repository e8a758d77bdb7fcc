package runtime

import (
	"math/rand/v2"
	"os"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/internal/luaload"
	"github.com/ipcscript/ipcscript/internal/luatable"
)

// openRandom gives the Lua state its own random generator. gopher-lua's
// math.randomseed calls rand.Seed, a no-op since Go 1.24, so
// math.randomseed(1) did nothing and every process drew different numbers:
// a script that sized a declaration with math.random after seeding got
// different declarations in the parent and its children. With a generator
// per state, equal seeds give equal draws in every process, as in Lua.
func openRandom(L *lua.LState) {
	if math, ok := L.GetGlobal("math").(*lua.LTable); ok {
		openRandomIn(L, math)
	}
}

// openRandomIn replaces math.random and math.randomseed in the math
// library table math.
func openRandomIn(L *lua.LState, math *lua.LTable) {
	src := rand.NewPCG(rand.Uint64(), rand.Uint64())
	r := rand.New(src)
	math.RawSetString("randomseed", L.NewFunction(func(L *lua.LState) int {
		seed := L.CheckNumber(1)
		src.Seed(uint64(int64(seed)), uint64(int64(L.OptNumber(2, 0))))
		return 0
	}))
	math.RawSetString("random", L.NewFunction(func(L *lua.LState) int {
		// Lua 5.1: random() in [0,1), random(m) in [1,m], random(m,n) in [m,n].
		switch L.GetTop() {
		case 0:
			L.Push(lua.LNumber(r.Float64()))
			return 1
		case 1:
			m := L.CheckInt64(1)
			if m < 1 {
				L.ArgError(1, "interval is empty")
			}
			L.Push(lua.LNumber(r.Int64N(m) + 1))
			return 1
		}
		lo, hi := L.CheckInt64(1), L.CheckInt64(2)
		if lo > hi {
			L.ArgError(2, "interval is empty")
		}
		L.Push(lua.LNumber(lo + r.Int64N(hi-lo+1)))
		return 1
	}))
}

// A child's standard libraries open on first use. Opening all ten cost a
// child ~420k instructions (callgrind), a third of what it does before its
// body runs, for a body that may use none of them: gopher-lua makes a
// function object and three map entries per library function. The base
// library opens at once; table, io, os, string, math, debug, channel and
// coroutine are each an empty table at first (in _G and package.loaded,
// where the library would be), and so is package (in _G; see
// openLibsLazily for require), whose metatable opens the
// library into that same table on the first read or write of a field and
// then goes away. What could see the difference first opens the
// library: the base functions next, pairs, rawget, rawset, getmetatable
// and setmetatable given such a table, and debug.getmetatable and
// debug.setmetatable. A string's methods ("x"):upper() go through the
// string table, so they open it too. The Go side (flushStdout) checks
// unopened() before reading a library table.

// The string keys a child's start sets, in the order it sets them
// (luatable.Expect): setting one then allocates nothing, where gopher-lua
// boxes each new key twice and grows the table's key list and index, and
// pairs lists them as before. A child set ~90 keys in these tables: ~180
// allocations, a third of its start's. Each list ends with the tables'
// room for keys besides (the script's globals, its modules).
var (
	// The globals: package, the base library (its functions in
	// gopher-lua's map order, which varies from run to run: here in the
	// order of its source), the libraries that open on first use, arg.
	globalKeys = []lua.LValue{
		lua.LString(lua.LoadLibName), lua.LString("_G"), lua.LString("_VERSION"), lua.LString("_GOPHER_LUA_VERSION"),
		lua.LString("assert"), lua.LString("collectgarbage"), lua.LString("dofile"), lua.LString("error"),
		lua.LString("getfenv"), lua.LString("getmetatable"), lua.LString("load"), lua.LString("loadfile"),
		lua.LString("loadstring"), lua.LString("next"), lua.LString("pcall"), lua.LString("print"),
		lua.LString("rawequal"), lua.LString("rawget"), lua.LString("rawset"), lua.LString("select"),
		lua.LString("_printregs"), lua.LString("setfenv"), lua.LString("setmetatable"), lua.LString("tonumber"),
		lua.LString("tostring"), lua.LString("type"), lua.LString("unpack"), lua.LString("xpcall"),
		lua.LString("module"), lua.LString("require"), lua.LString("newproxy"),
		lua.LString("ipairs"), lua.LString("pairs"),
		lua.LString(lua.TabLibName), lua.LString(lua.IoLibName), lua.LString(lua.OsLibName), lua.LString(lua.StringLibName),
		lua.LString(lua.MathLibName), lua.LString(lua.DebugLibName), lua.LString(lua.ChannelLibName), lua.LString(lua.CoroutineLibName),
		lua.LString("arg"),
	}
	moreGlobals = 8
	// package (its two functions, then the fields OpenPackage sets).
	packageKeys = []lua.LValue{
		lua.LString("loadlib"), lua.LString("seeall"), lua.LString("preload"), lua.LString("loaders"),
		lua.LString("loaded"), lua.LString("path"), lua.LString("cpath"), lua.LString("config"),
	}
	// package.loaded: _G, then the libraries that open on first use (ipc
	// is not listed: it comes when and if the script requires it).
	loadedKeys = []lua.LValue{
		lua.LString("_G"),
		lua.LString(lua.TabLibName), lua.LString(lua.IoLibName), lua.LString(lua.OsLibName), lua.LString(lua.StringLibName),
		lua.LString(lua.MathLibName), lua.LString(lua.DebugLibName), lua.LString(lua.ChannelLibName), lua.LString(lua.CoroutineLibName),
	}
	moreLoaded = 4
	// The registry: the tables of package.loaded and package.loaders.
	registryKeys = []lua.LValue{lua.LString("_LOADED"), lua.LString("_LOADERS")}
	moreRegistry = 6
	// The unopened libraries' metatable; its first key alone, the
	// strings' metatable until the string library opens.
	metaKeys = []lua.LValue{lua.LString("__index"), lua.LString("__newindex")}
)

// lazyLib is a library not opened yet.
type lazyLib struct {
	name string
	open lua.LGFunction
	hook func(L *lua.LState, lib *lua.LTable) // after opening (openRandom, guardForks)
}

// lazyLibs are the libraries of a state that open on first use.
type lazyLibs struct {
	mt   *lua.LTable // the metatable of every unopened library table
	libs map[*lua.LTable]*lazyLib
	// package, until it opens (nil then), and its library.
	pkg    *lua.LTable
	pkgLib lazyLib
	// The registry's _LOADED, which package.loaded is once package opens.
	loaded *lua.LTable
	// What package.preload gets when package opens (preload): the ipc
	// module's loader, which require("ipc") also calls without opening
	// package, and the embedder's modules.
	ipc     lua.LGFunction
	modules []namedModule
	// LUA_PATH as it was at start, which package.path is made of.
	luaPath string
}

type namedModule struct {
	name string
	fn   lua.LGFunction
}

// openLibsLazily opens the base library, and the others on first use;
// hooks[name] runs right after library name opens.
//
// package opens on first use too (~30k instructions of a child's start,
// callgrind: its table, its loaders, package.path from LUA_PATH, preload
// and loaded tables), though nearly every script's first line is
// require("ipc"): while package is not open, require("ipc") calls the
// module's loader itself and puts the module in package.loaded, the
// registry's _LOADED, made here (what gopher-lua's require does, but for
// the loaders it would ask first: package.preload.ipc is the first to
// answer, and package.preload is not reachable before package opens). Any
// other require, and any use of package, opens it as it would have been
// at start, with package.loaded the same table (package.loaded.ipc the
// module), package.preload.ipc the loader, package.path from LUA_PATH as
// it was at start.
func openLibsLazily(L *lua.LState, hooks map[string]func(*lua.LState, *lua.LTable)) *lazyLibs {
	reg := L.G.Registry
	luatable.Expect(reg, registryKeys, moreRegistry)
	g := L.G.Global
	luatable.Expect(g, globalKeys, moreGlobals)
	z := &lazyLibs{mt: luatable.New(0), libs: make(map[*lua.LTable]*lazyLib, 8), luaPath: os.Getenv(lua.LuaPath)}
	// package.loaded, made here as OpenPackage would (OpenBase puts _G in
	// it, as it finds it in the registry).
	loaded := luatable.New(0)
	luatable.Expect(loaded, loadedKeys, moreLoaded)
	reg.RawSetString("_LOADED", loaded)
	z.loaded = loaded
	// package, unopened: the table OpenPackage will find there
	// (RegisterModule makes one only when there is none).
	pkg := luatable.New(0)
	luatable.Expect(pkg, packageKeys, 0)
	pkg.Metatable = z.mt
	z.pkg = pkg
	z.pkgLib = lazyLib{name: lua.LoadLibName, open: z.openPackage, hook: z.packageOpened}
	g.RawSetString(lua.LoadLibName, pkg)
	L.Push(L.NewFunction(lua.OpenBase))
	L.Push(lua.LString(lua.BaseLibName))
	L.Call(1, 0)
	if orig, ok := g.RawGetString("require").(*lua.LFunction); ok && orig.IsG && len(orig.Upvalues) == 0 {
		req := orig.GFunction
		g.RawSetString("require", L.NewFunction(func(L *lua.LState) int {
			if z.pkg != nil {
				if n, ok := z.requireIpc(L); ok {
					return n
				}
				z.open(L, z.pkg)
			}
			return req(L)
		}))
	}
	luatable.Expect(z.mt, metaKeys, 0)
	z.mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		z.open(L, t)
		L.Push(L.GetTable(t, L.Get(2)))
		return 1
	}))
	z.mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		z.open(L, t)
		L.SetTable(t, L.Get(2), L.Get(3))
		return 0
	}))
	// The libraries and their tables, each set made in one allocation.
	libs := &[...]lazyLib{
		// The order of lua.OpenLibs, so that pairs(_G) lists them in it.
		{name: lua.TabLibName, open: lua.OpenTable}, {name: lua.IoLibName, open: lua.OpenIo},
		{name: lua.OsLibName, open: lua.OpenOs}, {name: lua.StringLibName, open: lua.OpenString},
		{name: lua.MathLibName, open: lua.OpenMath}, {name: lua.DebugLibName, open: lua.OpenDebug},
		{name: lua.ChannelLibName, open: lua.OpenChannel}, {name: lua.CoroutineLibName, open: lua.OpenCoroutine},
	}
	// Empty until the library opens into it: no array or hash part yet
	// (L.NewTable's are 32 slots each, ~2.6 KiB, which for these eight
	// tables and the two metatables here were ~7 pages of heap a child
	// touched at start).
	tables := new([len(libs)]lua.LTable)
	for i := range libs {
		lib, t := &libs[i], &tables[i]
		lib.hook = hooks[lib.name]
		t.Metatable = z.mt
		z.libs[t] = lib
		g.RawSetString(lib.name, t) // L.SetGlobal, as _G has no metatable
		loaded.RawSetString(lib.name, t)
		if lib.name == lua.StringLibName {
			// The strings' metatable, until the library sets its own
			// (the string table itself).
			mt := luatable.New(0)
			luatable.Expect(mt, metaKeys[:1], 0)
			mt.RawSetString("__index", t)
			L.SetMetatable(lua.LString(""), mt)
		}
	}
	// The base functions that would see an unopened table as it is.
	opening := func(orig *lua.LFunction) *lua.LFunction {
		g := orig.GFunction
		upvalues := make([]lua.LValue, len(orig.Upvalues))
		for i, uv := range orig.Upvalues {
			upvalues[i] = uv.Value()
		}
		return L.NewClosure(func(L *lua.LState) int {
			if t, ok := L.Get(1).(*lua.LTable); ok && t.Metatable == z.mt {
				z.open(L, t)
			}
			return g(L)
		}, upvalues...)
	}
	for _, name := range []string{"next", "pairs", "rawget", "rawset", "getmetatable", "setmetatable"} {
		if orig, ok := g.RawGetString(name).(*lua.LFunction); ok && orig.IsG {
			g.RawSetString(name, opening(orig))
		}
	}
	debugHook := hooks[lua.DebugLibName]
	for _, lib := range z.libs {
		if lib.name == lua.DebugLibName {
			lib.hook = func(L *lua.LState, dbg *lua.LTable) {
				for _, name := range []string{"getmetatable", "setmetatable"} {
					if orig, ok := dbg.RawGetString(name).(*lua.LFunction); ok && orig.IsG {
						dbg.RawSetString(name, opening(orig))
					}
				}
				if debugHook != nil {
					debugHook(L, dbg)
				}
			}
		}
	}
	return z
}

// open opens the library whose table t is, into t, if it is not open yet.
func (z *lazyLibs) open(L *lua.LState, t *lua.LTable) {
	lib := z.libs[t]
	if t == z.pkg {
		lib, z.pkg = &z.pkgLib, nil
	}
	if lib == nil || t.Metatable != z.mt {
		return
	}
	t.Metatable = lua.LNil
	delete(z.libs, t)
	// The library's open function fills the table at _G[name] and sets
	// package.loaded[name]: make both t for it, then put back whatever
	// the script had put there instead.
	g := L.Get(lua.GlobalsIndex).(*lua.LTable)
	loaded := z.loaded
	inG, inLoaded := g.RawGetString(lib.name), loaded.RawGetString(lib.name)
	g.RawSetString(lib.name, t)
	loaded.RawSetString(lib.name, lua.LNil)
	L.Push(L.NewFunction(lib.open))
	L.Push(lua.LString(lib.name))
	L.Call(1, 0)
	if inG != t {
		g.RawSetString(lib.name, inG)
	}
	if inLoaded != t {
		loaded.RawSetString(lib.name, inLoaded)
	}
	if lib.hook != nil {
		lib.hook(L, t)
	}
}

// unopened reports whether v is a library table not opened yet.
func (z *lazyLibs) unopened(v lua.LValue) bool {
	t, ok := v.(*lua.LTable)
	return ok && z != nil && t.Metatable == z.mt
}

// preload gives package.preload, when package opens, the ipc module's
// loader (which require("ipc") calls before) and the embedder's modules.
func (z *lazyLibs) preload(ipc lua.LGFunction, modules map[string]lua.LGFunction) {
	z.ipc = ipc
	for name, fn := range modules {
		z.modules = append(z.modules, namedModule{name, fn})
	}
}

// requireIpc is require("ipc") while package is not open, when L's
// arguments are "ipc" and package is the unopened table: gopher-lua's
// require would find the module in package.loaded or ask the loaders,
// the first of which answers package.preload.ipc, which is z.ipc.
func (z *lazyLibs) requireIpc(L *lua.LState) (int, bool) {
	if name, ok := L.Get(1).(lua.LString); !ok || name != "ipc" || z.ipc == nil || L.G.Global.RawGetString(lua.LoadLibName) != z.pkg {
		return 0, false
	}
	if mod := z.loaded.RawGetString("ipc"); lua.LVAsBool(mod) {
		L.Push(mod)
		return 1, true
	}
	top := L.GetTop()
	z.ipc(L)
	mod := lua.LValue(lua.LTrue) // as require, for a loader returning nil
	if L.GetTop() > top && L.Get(top+1) != lua.LNil {
		mod = L.Get(top + 1)
	}
	L.SetTop(top)
	z.loaded.RawSetString("ipc", mod)
	L.Push(mod)
	return 1, true
}

// openPackage opens package as it opens first: OpenPackage's
// RegisterModule finds no _LOADED and makes a table of its own, which it
// then replaces with package.loaded (packageOpened puts z.loaded back).
func (z *lazyLibs) openPackage(L *lua.LState) int {
	L.G.Registry.RawSetString("_LOADED", lua.LNil)
	return lua.OpenPackage(L)
}

// packageOpened makes package, just opened, what it would have been
// opened at start: package.loaded the table require("ipc") and the
// libraries used, package.path from LUA_PATH then, luaload's loader of
// Lua files, the preloaded modules.
func (z *lazyLibs) packageOpened(L *lua.LState, pkg *lua.LTable) {
	L.G.Registry.RawSetString("_LOADED", z.loaded)
	pkg.RawSetString("loaded", z.loaded)
	if os.Getenv(lua.LuaPath) != z.luaPath { // os.setenv since start
		path := z.luaPath
		if path == "" {
			path = lua.LuaPathDefault
		}
		pkg.RawSetString("path", lua.LString(strings.ReplaceAll(path, ";;", ";"+lua.LuaPathDefault+";")))
	}
	luaload.OpenLoader(L, pkg)
	preload, ok := pkg.RawGetString("preload").(*lua.LTable)
	if !ok {
		return
	}
	if z.ipc != nil {
		bindings.PreloadInto(L, preload, z.ipc)
	}
	for _, m := range z.modules {
		preload.RawSetString(m.name, L.NewFunction(m.fn))
	}
}
