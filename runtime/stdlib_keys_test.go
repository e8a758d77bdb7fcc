package runtime

import (
	"slices"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// The keys a child's start expects in its globals, package and
// package.loaded (luatable.Expect) are the keys it sets there, in the
// order it sets them: a key gopher-lua adds, drops or moves fails here,
// so that the lists follow (an expected key never set would wait, unseen,
// in its place: a script setting it later would see it there in pairs).
func TestChildStartKeys(t *testing.T) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	openLibsLazily(L, nil)
	setArgs(L, "x.lua", nil)
	pkg := L.GetGlobal(lua.LoadLibName).(*lua.LTable)
	L.GetField(pkg, "path") // opens package
	for _, c := range []struct {
		name string
		t    *lua.LTable
		want []lua.LValue
	}{
		{"the globals", L.G.Global, globalKeys},
		{"package", pkg, packageKeys},
		{"package.loaded", L.GetField(pkg, "loaded").(*lua.LTable), loadedKeys},
	} {
		var got, want []string
		for k, _ := c.t.Next(lua.LNil); k != lua.LNil; k, _ = c.t.Next(k) {
			got = append(got, k.String())
		}
		for _, k := range c.want {
			want = append(want, k.String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s hold\n%q\nexpected\n%q", c.name, got, want)
		}
	}
	if L.GetField(L.Get(lua.RegistryIndex), "_LOADED") != L.GetField(pkg, "loaded") {
		t.Errorf("package.loaded is not the registry's _LOADED")
	}
}
