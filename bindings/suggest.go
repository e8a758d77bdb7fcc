package bindings

import (
	"fmt"
	"sort"

	lua "github.com/yuin/gopher-lua"
)

// Errors that teach: a misspelt name in the ipc module or a method of an
// ipc object says what it is and what was probably meant, instead of
// gopher-lua's "attempt to call a non-function object".
//
//   - ipc.mailbx(...) raises at the lookup: `ipc.mailbx: no such function in
//     the ipc module; did you mean ipc.mailbox?` (use rawget(ipc, name) to
//     test whether a function exists).
//   - box:recieve() raises at the call, naming the object: `recieve: no such
//     method on mailbox "jobs"; did you mean receive?`. The lookup of an
//     unknown method returns that raising function rather than raising, so
//     only the methods tables of the objects pay nothing on a hit: the
//     __index below runs on misses only.

// strictModule makes a lookup of a missing name in the ipc module raise.
func strictModule(L *lua.LState, mod *lua.LTable) {
	mt := metatable(indexKey)
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		key, ok := L.Get(2).(lua.LString)
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		hint := ""
		if s := closest(string(key), tableKeys(mod)); s != "" {
			hint = "; did you mean ipc." + s + "?"
		}
		L.RaiseError("ipc.%s: no such function in the ipc module%s", string(key), hint)
		return 0
	}))
	L.SetMetatable(mod, mt)
}

// strictMethods makes a lookup of a missing method in an object's methods
// table return a function that raises when called, naming the object (its
// first argument) and the nearest method. optional names fields that may
// be absent (nil) without being mistakes.
func strictMethods(L *lua.LState, idx *lua.LTable, optional ...string) {
	mt := metatable(indexKey)
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		key, ok := L.Get(2).(lua.LString)
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		for _, o := range optional {
			if string(key) == o {
				L.Push(lua.LNil)
				return 1
			}
		}
		L.Push(noSuchMember(L, string(key), tableKeys(idx)))
		return 1
	}))
	L.SetMetatable(idx, mt)
}

// noSuchMember is what a missing method's lookup gives: a function that
// raises when called, naming the object (its first argument) and the
// nearest of names.
func noSuchMember(L *lua.LState, name string, names []string) *lua.LFunction {
	return L.NewFunction(func(L *lua.LState) int {
		hint := ""
		if s := closest(name, names); s != "" {
			hint = "; did you mean " + s + "?"
		}
		L.RaiseError("%s: no such method on %s%s", name, describeValue(L.Get(1)), hint)
		return 0
	})
}

// describeValue names an ipc object as errors do (mailbox "jobs"), or the
// type of anything else.
func describeValue(v lua.LValue) string {
	if ud, ok := v.(*lua.LUserData); ok {
		if s, ok := ud.Value.(fmt.Stringer); ok {
			return s.String()
		}
	}
	return "a " + v.Type().String()
}

// tableKeys lists the string keys of t (raw), sorted.
func tableKeys(t *lua.LTable) []string {
	var keys []string
	t.ForEach(func(k, _ lua.LValue) {
		if s, ok := k.(lua.LString); ok {
			keys = append(keys, string(s))
		}
	})
	sort.Strings(keys)
	return keys
}

// closest returns the candidate nearest to name by edit distance (a swap
// of two neighbours counts one), if it is near enough to be a typo: at
// most 1 edit for short names, 2 from 5 letters, 3 from 9.
func closest(name string, candidates []string) string {
	limit := 1 + len(name)/5
	if limit > 3 {
		limit = 3
	}
	best, bestD := "", limit+1
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance (Levenshtein with
// transpositions), case-insensitive.
func editDistance(a, b string) int {
	ra, rb := []rune(toLower(a)), []rune(toLower(b))
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
