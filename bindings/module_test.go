package bindings

import (
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// The module table and the pending classes' map are sized once for what
// newModule puts in them: a name or a class added beyond moduleNamesHint
// or pendingClassesHint fails here, so that the hint is raised with it.
func TestModuleHints(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	env := &Env{Host: CheckHost()}
	mod := newModule(L, env)
	names := 0
	mod.ForEach(func(lua.LValue, lua.LValue) { names++ })
	if names == 0 || names > moduleNamesHint {
		t.Errorf("the module holds %d names; moduleNamesHint is %d: raise it", names, moduleNamesHint)
	}
	if n := len(pendingClasses(L).specs); n == 0 || n > pendingClassesHint {
		t.Errorf("the module registers %d classes; pendingClassesHint is %d: raise it", n, pendingClassesHint)
	}
	// Every module function but the messenger's (L.SetFuncs) is one of
	// those made at once: one made alone means moduleFuncsHint is too low.
	inArena := func(f *lua.LFunction) bool {
		for i := range env.funcs {
			if f == &env.funcs[i] {
				return true
			}
		}
		return false
	}
	mod.ForEach(func(k, v lua.LValue) {
		f, ok := v.(*lua.LFunction)
		if !ok || inArena(f) {
			return
		}
		switch k.String() {
		case "send", "receive", "link", "mailbox", "select":
		default:
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
