package luatable

import (
	"reflect"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// Fields must be lua.LTable field for field: names, types and offsets.
func TestLayout(t *testing.T) {
	if !LayoutMatches {
		want, got := reflect.TypeOf(lua.LTable{}), reflect.TypeOf(Fields{})
		t.Fatalf("lua.LTable is %v, not laid out as %v: gopher-lua changed; update Fields", want, got)
	}
}

// A presized table behaves as any other: the keys in the order they were
// set, for next and pairs, and no growth while n keys are set.
func TestPresized(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	for _, tb := range []*lua.LTable{New(4), func() *lua.LTable { t := L.CreateTable(0, 4); Presize(t, 4); return t }()} {
		names := []string{"d", "a", "c", "b"}
		for i, k := range names {
			tb.RawSetString(k, lua.LNumber(i))
		}
		tb.RawSetInt(1, lua.LTrue)
		var got []string
		for k, _ := tb.Next(lua.LNil); k != lua.LNil; k, _ = tb.Next(k) {
			got = append(got, k.String())
		}
		if !reflect.DeepEqual(got, []string{"1", "d", "a", "c", "b"}) {
			t.Errorf("next gives %q", got)
		}
		if tb.Metatable != lua.LNil {
			t.Errorf("metatable %v", tb.Metatable)
		}
	}
}

// n keys set, the keys' list is the one Presize made.
func TestNoGrowth(t *testing.T) {
	tb := New(40)
	x := Of(tb)
	keys := x.Keys[:0:cap(x.Keys)]
	for i := range 40 {
		tb.RawSetString(string(rune('A'+i)), lua.LTrue)
	}
	if &x.Keys[0] != &keys[:1][0] {
		t.Errorf("the keys grew")
	}
}

var expected = []lua.LValue{lua.LString("b"), lua.LString("a"), lua.LString("c")}

// nextKeys lists t's keys in next's order.
func nextKeys(tb *lua.LTable) []string {
	var got []string
	for k, _ := tb.Next(lua.LNil); k != lua.LNil; k, _ = tb.Next(k) {
		got = append(got, k.String())
	}
	return got
}

// Expected keys appear in next's order only once set, and in their place;
// other keys follow them. Setting an expected key allocates nothing.
func TestExpect(t *testing.T) {
	tb := New(0)
	Expect(tb, expected, 1)
	if got := nextKeys(tb); got != nil {
		t.Errorf("nothing set, next gives %q", got)
	}
	tb.RawSetString("c", lua.LTrue)
	tb.RawSetString("x", lua.LTrue)
	if got := nextKeys(tb); !reflect.DeepEqual(got, []string{"c", "x"}) {
		t.Errorf("next gives %q", got)
	}
	tb.RawSetString("b", lua.LTrue)
	if got := nextKeys(tb); !reflect.DeepEqual(got, []string{"b", "c", "x"}) {
		t.Errorf("next gives %q", got)
	}
	if n := testing.AllocsPerRun(10, func() { tb.RawSetString("a", lua.LFalse) }); n != 0 {
		t.Errorf("setting an expected key: %v allocations", n)
	}
	if got := nextKeys(tb); !reflect.DeepEqual(got, []string{"b", "a", "c", "x"}) {
		t.Errorf("next gives %q", got)
	}
	// A table with keys already keeps them.
	Expect(tb, []lua.LValue{lua.LString("z")}, 0)
	tb.RawSetString("z", lua.LTrue)
	if got := nextKeys(tb); !reflect.DeepEqual(got, []string{"b", "a", "c", "x", "z"}) {
		t.Errorf("next gives %q", got)
	}
}
