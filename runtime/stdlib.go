package runtime

import (
	"math/rand/v2"

	lua "github.com/yuin/gopher-lua"
)

// openRandom gives the Lua state its own random generator. gopher-lua's
// math.randomseed calls rand.Seed, a no-op since Go 1.24, so
// math.randomseed(1) did nothing and every process drew different numbers:
// a script that sized a declaration with math.random after seeding got
// different declarations in the parent and its children. With a generator
// per state, equal seeds give equal draws in every process, as in Lua.
func openRandom(L *lua.LState) {
	src := rand.NewPCG(rand.Uint64(), rand.Uint64())
	r := rand.New(src)
	math, ok := L.GetGlobal("math").(*lua.LTable)
	if !ok {
		return
	}
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
