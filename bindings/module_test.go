package bindings

import (
	"slices"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// The module's names are moduleKeys, in its order, and the pending
// classes' list is sized once for what newModule puts in it: a name
// added, moved or removed fails here, so that moduleKeys follows, and a
// class beyond pendingClassesHint, so that the hint is raised with it.
func TestModuleHints(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	env := &Env{Host: CheckHost()}
	mod := newModule(L, env)
	var names, want []string
	for k, _ := mod.Next(lua.LNil); k != lua.LNil; k, _ = mod.Next(k) {
		names = append(names, k.String())
	}
	for _, k := range moduleKeys {
		want = append(want, k.String())
	}
	if !slices.Equal(names, want) {
		t.Errorf("the module's names are\n%q\nmoduleKeys are\n%q", names, want)
	}
	if n := len(pendingClasses(L).specs); n == 0 || n > pendingClassesHint {
		t.Errorf("the module registers %d classes; pendingClassesHint is %d: raise it", n, pendingClassesHint)
	}
	// Every module function is one of those made at once: one made
	// alone means moduleFuncsHint is too low.
	inArena := func(f *lua.LFunction) bool {
		for i := range env.funcs {
			if f == &env.funcs[i] {
				return true
			}
		}
		return false
	}
	mod.ForEach(func(k, v lua.LValue) {
		if f, ok := v.(*lua.LFunction); ok && !inArena(f) {
			t.Errorf("ipc.%s made alone: moduleFuncsHint is %d, raise it", k, moduleFuncsHint)
		}
	})
}

// A class's metatable, made on first use without L.NewTypeMetatable, is
// still the type metatable gopher-lua finds under the class's name, made
// once, with its methods, __index and __tostring.
func TestClassMetatableIsTypeMetatable(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	newModule(L, &Env{Host: CheckHost()})
	classes := pendingClasses(L).names()
	for _, class := range classes {
		if mt := L.GetTypeMetatable(class); mt != lua.LNil {
			t.Fatalf("%s: a metatable before first use", class)
		}
		mt, ok := classMetatable(L, class).(*lua.LTable)
		if !ok {
			t.Fatalf("%s: no metatable", class)
		}
		if got := L.GetTypeMetatable(class); got != mt {
			t.Fatalf("%s: GetTypeMetatable = %v, want the class's metatable", class, got)
		}
		if again := classMetatable(L, class); again != mt {
			t.Fatalf("%s: a second metatable on second use", class)
		}
		for _, field := range []string{"__methods", "__index", "__tostring"} {
			if mt.RawGetString(field) == lua.LNil {
				t.Errorf("%s: metatable without %s", class, field)
			}
		}
	}
	if n := len(pendingClasses(L).specs); n != 0 {
		t.Fatalf("%d classes still pending after each was used", n)
	}
}
