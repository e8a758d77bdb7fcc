package bindings

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/check"
)

// The editor stubs, types/ipc.lua, describe the ipc module for
// lua-language-server. TestStubs keeps them honest: every function, constant
// and field of the ipc table, every userdata class the module registers and
// every method of each has a stub, and every stub names something the
// module has.
//
// Updating the stubs when you add to the module:
//
//   - a function ipc.x: add `function ipc.x(...) end` with its ---@param and
//     ---@return lines (see the others), next to its kind's section;
//   - a constant or field ipc.X: add `ipc.X = value` (or `---@type` and
//     `ipc.X = nil` for an object);
//   - a userdata class (env.registerClass(L, "ipc.x", ...)): add
//     `---@class ipc.x` (with `: ipc.Stream` or another parent when it
//     shares their methods), then `local x = {}`, then one
//     `function x:method(...) end` per method;
//   - a method: `function x:method(...) end` under its class.
//
// Table shapes (options, the message, the report) are classes with a
// capitalised name (ipc.SendOpts) and are not compared with the module. A
// class whose objects each get their own metatable, as mailboxes do, is not
// in the registry: give perObject below a declaration that makes one.
//
// Run: go test ./bindings -run TestStubs

const stubsPath = "../types/ipc.lua"

// perObject declares one object of each class whose metatable is made per
// object (not registered under the class name); the global names them.
const perObject = `
ipc = require("ipc")
mailbox_sample = ipc.mailbox("sample")
`

// moduleShape is what the module or the stubs define: functions and
// fields of the ipc table, and methods by class.
type moduleShape struct {
	funcs   map[string]bool
	fields  map[string]bool
	methods map[string]map[string]bool // class -> method
	locals  map[string]string          // class -> its Lua local in the stubs
}

func newShape() moduleShape {
	return moduleShape{funcs: map[string]bool{}, fields: map[string]bool{}, methods: map[string]map[string]bool{}, locals: map[string]string{}}
}

func (s moduleShape) addMethod(class, m string) {
	if s.methods[class] == nil {
		s.methods[class] = map[string]bool{}
	}
	s.methods[class][m] = true
}

// realModule introspects the module as a script sees it.
func realModule(t *testing.T) moduleShape {
	L, _ := parentState(t, perObject)
	TraceValue(L, &check.Trace{}, "") // registers ipc.trace, which is made on first use
	shape := newShape()

	mod, ok := L.GetGlobal("ipc").(*lua.LTable)
	if !ok {
		t.Fatal("require(\"ipc\") did not return a table")
	}
	mod.ForEach(func(k, v lua.LValue) {
		if _, ok := v.(*lua.LFunction); ok {
			shape.funcs[k.String()] = true
		} else {
			shape.fields[k.String()] = true
		}
	})

	addMethods := func(class string, methods lua.LValue) {
		tb, ok := methods.(*lua.LTable)
		if !ok {
			t.Fatalf("class %s: no method table (registerClass sets __methods)", class)
		}
		shape.methods[class] = map[string]bool{}
		tb.ForEach(func(k, v lua.LValue) {
			if _, ok := v.(*lua.LFunction); ok {
				shape.addMethod(class, k.String())
			}
		})
	}
	// Classes registered with registerClass: in the registry by name, once
	// made (each is made on its first use).
	makeClasses(L)
	L.Get(lua.RegistryIndex).(*lua.LTable).ForEach(func(k, v lua.LValue) {
		name, isStr := k.(lua.LString)
		mt, isTable := v.(*lua.LTable)
		if !isStr || !isTable || !strings.HasPrefix(string(name), "ipc.") {
			return
		}
		addMethods(string(name), mt.RawGetString("__methods"))
	})
	// Classes with a metatable per object: __metatable names the class,
	// __index holds the methods (and fields, which are not functions).
	L.G.Global.ForEach(func(k, v lua.LValue) {
		ud, ok := v.(*lua.LUserData)
		if !ok || !strings.HasSuffix(k.String(), "_sample") {
			return
		}
		mt, _ := ud.Metatable.(*lua.LTable)
		if mt == nil {
			t.Fatalf("%s has no metatable", k)
		}
		addMethods(mt.RawGetString("__metatable").String(), mt.RawGetString("__index"))
	})
	return shape
}

var (
	stubClassRE  = regexp.MustCompile(`^---@class\s+([\w.]+)\s*(?::\s*([\w.]+))?`)
	stubLocalRE  = regexp.MustCompile(`^local\s+(\w+)\s*=\s*\{\s*\}`)
	stubMethodRE = regexp.MustCompile(`^function\s+(\w+):(\w+)\s*\(`)
	stubFuncRE   = regexp.MustCompile(`^function\s+ipc\.(\w+)\s*\(`)
	stubFieldRE  = regexp.MustCompile(`^ipc\.(\w+)\s*=`)
)

// userdataClass: lower case after "ipc." is a class of the module; a
// capitalised name is a table shape or a base class.
func userdataClass(name string) bool {
	rest, ok := strings.CutPrefix(name, "ipc.")
	return ok && rest != "" && rest[0] >= 'a' && rest[0] <= 'z'
}

// stubModule reads types/ipc.lua by the conventions written at its top.
func stubModule(t *testing.T) moduleShape {
	src, err := os.ReadFile(stubsPath)
	if err != nil {
		t.Fatal(err)
	}
	shape := newShape()
	own := map[string]map[string]bool{} // class -> methods defined on it
	parent := map[string]string{}
	var classes []string
	localClass := map[string]string{} // Lua local -> class
	pending := ""                     // the last ---@class, until its local
	for i, line := range strings.Split(string(src), "\n") {
		where := fmt.Sprintf("%s:%d", stubsPath, i+1)
		if m := stubClassRE.FindStringSubmatch(line); m != nil {
			pending = m[1]
			if m[2] != "" {
				parent[m[1]] = m[2]
			}
			classes = append(classes, m[1])
			continue
		}
		if m := stubLocalRE.FindStringSubmatch(line); m != nil {
			if pending != "" {
				localClass[m[1]] = pending
				shape.locals[pending] = m[1]
				pending = ""
			}
			continue
		}
		if m := stubFuncRE.FindStringSubmatch(line); m != nil {
			shape.funcs[m[1]] = true
			continue
		}
		if m := stubFieldRE.FindStringSubmatch(line); m != nil {
			shape.fields[m[1]] = true
			continue
		}
		if m := stubMethodRE.FindStringSubmatch(line); m != nil {
			class, ok := localClass[m[1]]
			if !ok {
				t.Fatalf("%s: method %s:%s on a local that no ---@class line names", where, m[1], m[2])
			}
			if own[class] == nil {
				own[class] = map[string]bool{}
			}
			own[class][m[2]] = true
		}
	}
	// A class's methods are its own and its ancestors'.
	for _, c := range classes {
		if !userdataClass(c) {
			continue
		}
		shape.methods[c] = map[string]bool{}
		for a, depth := c, 0; a != ""; a, depth = parent[a], depth+1 {
			if depth > 10 {
				t.Fatalf("%s: class %s inherits in a loop", stubsPath, c)
			}
			for m := range own[a] {
				shape.addMethod(c, m)
			}
		}
	}
	return shape
}

func TestStubs(t *testing.T) {
	real, stub := realModule(t), stubModule(t)
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	for _, f := range sortedKeys(real.funcs) {
		if !stub.funcs[f] {
			add("ipc.%s is a function of the module with no stub: add `function ipc.%s(...) end` with ---@param/---@return lines", f, f)
		}
	}
	for _, f := range sortedKeys(stub.funcs) {
		if !real.funcs[f] {
			add("the stub `function ipc.%s` names no function of the module: remove it, or register the function", f)
		}
	}
	for _, f := range sortedKeys(real.fields) {
		if !stub.fields[f] {
			add("ipc.%s is a field of the module with no stub: add `ipc.%s = <value>` (or ---@type and `ipc.%s = nil` for an object)", f, f, f)
		}
	}
	for _, f := range sortedKeys(stub.fields) {
		if !real.fields[f] {
			add("the stub `ipc.%s = ...` names no field of the module: remove it", f)
		}
	}
	for _, c := range sortedKeys(real.methods) {
		sm, ok := stub.methods[c]
		if !ok {
			add("class %s has no stub: add `---@class %s`, `local x = {}` and a `function x:m(...) end` per method (%s)", c, c, strings.Join(sortedKeys(real.methods[c]), ", "))
			continue
		}
		for _, m := range sortedKeys(real.methods[c]) {
			if !sm[m] {
				add("method %s:%s has no stub: add `function %s:%s(...) end` under `---@class %s`", c, m, stub.locals[c], m, c)
			}
		}
		for _, m := range sortedKeys(sm) {
			if !real.methods[c][m] {
				add("the stub method %s:%s is not a method of the module: remove it", c, m)
			}
		}
	}
	for _, c := range sortedKeys(stub.methods) {
		if _, ok := real.methods[c]; !ok {
			add("the stub class %s is not a class of the module: remove it, give a table shape a capitalised name, or (for a class with a metatable per object) add a sample to perObject in bindings/stubs_test.go", c)
		}
	}
	if len(problems) > 0 {
		t.Fatalf("types/ipc.lua and the ipc module differ (see the top of bindings/stubs_test.go):\n  %s", strings.Join(problems, "\n  "))
	}
	if len(real.funcs) < 10 || len(real.methods) < 10 {
		t.Fatalf("introspection found too little: %d functions, %d classes", len(real.funcs), len(real.methods))
	}
	t.Logf("%d functions, %d fields, %d classes checked", len(real.funcs), len(real.fields), len(real.methods))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestScriptsUseKnownNames: every ipc.name the example scripts and the
// exercises use is a function or field of the module (what
// lua-language-server --check would report as an undefined field, for the
// module table; methods need types and are left to it).
func TestScriptsUseKnownNames(t *testing.T) {
	real := realModule(t)
	files, _ := filepath.Glob("../scripts/*.lua")
	more, _ := filepath.Glob("../exercises/*/*.lua")
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no scripts found")
	}
	use := regexp.MustCompile(`\bipc\.([A-Za-z_]\w*)`)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			code, _, _ := strings.Cut(line, "--") // not in comments
			for _, m := range use.FindAllStringSubmatch(code, -1) {
				if !real.funcs[m[1]] && !real.fields[m[1]] {
					t.Errorf("%s:%d: ipc.%s is not in the module", f, i+1, m[1])
				}
			}
		}
	}
}

// TestLuaLanguageServerCheck: lua-language-server --check finds nothing in
// scripts/ with the stubs (scripts/.luarc.json points at types/). This
// machine cannot install it (no Debian package, none on the npm registry,
// and its GitHub releases are not reachable), so here it skips; with the
// server on PATH it runs. It has never run here: if the server words its
// verdict differently, fix the check below, not the scripts.
func TestLuaLanguageServerCheck(t *testing.T) {
	luals, err := exec.LookPath("lua-language-server")
	if err != nil {
		t.Skip("lua-language-server is not installed (not installable here: no Debian package, none on npm, GitHub releases unreachable); TestStubs and TestScriptsUseKnownNames check the stubs instead")
	}
	scripts, _ := filepath.Abs("../scripts")
	out, err := exec.Command(luals, "--check="+scripts, "--checklevel=Warning", "--logpath="+t.TempDir()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "no problems found") {
		t.Fatalf("lua-language-server --check %s: %v\n%s", scripts, err, out)
	}
}
