package runtime

import (
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/internal/luaload"
)

// BenchmarkChildState is a child's Lua state as runChild makes it (not
// sandboxed), then with require("ipc") as a script's first line: the
// allocations every launched process pays before its body runs.
func BenchmarkChildState(b *testing.B) {
	m := manifest64()
	state := func() *lua.LState {
		L := lua.NewState(lua.Options{RegistrySize: 1024, RegistryMaxSize: 1 << 20, RegistryGrowStep: 1024, SkipOpenLibs: true})
		libs := openLibsLazily(L, map[string]func(*lua.LState, *lua.LTable){
			lua.MathLibName: openRandomIn,
			lua.OsLibName:   func(L *lua.LState, t *lua.LTable) { guardForks(L, lua.OsLibName, t) },
			lua.IoLibName:   func(L *lua.LState, t *lua.LTable) { guardForks(L, lua.IoLibName, t) },
		})
		luaload.Open(L)
		libs.preload(bindings.Loader(&bindings.Env{Host: bindings.ChildHost(m), Manifest: m}), nil)
		setArgs(L, m.Script, m.Args)
		return L
	}
	b.Run("libraries", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			state()
		}
	})
	b.Run("require-ipc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			L := state()
			if err := L.CallByParam(lua.P{Fn: L.GetGlobal("require"), NRet: 1}, lua.LString("ipc")); err != nil {
				b.Fatal(err)
			}
		}
	})
}
