package runtime

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/internal/luaload"
)

// A child runs the parent's compiled chunk when it decodes and names the
// script, and compiles the source otherwise. The image here pairs the
// source `R = "source"` with a chunk compiled from `R = "chunk"`, so the
// result says which one ran.
func TestScriptImage(t *testing.T) {
	proto, err := luaload.Compile(strings.NewReader(`R = "chunk"`), "s.lua")
	if err != nil {
		t.Fatal(err)
	}
	const src = `R = "source"`
	run := func(image []byte, name string) string {
		t.Helper()
		L := lua.NewState()
		defer L.Close()
		fn, err := loadScriptImage(L, image, name)
		if err != nil {
			t.Fatal(err)
		}
		L.Push(fn)
		if err := L.PCall(0, 0, nil); err != nil {
			t.Fatal(err)
		}
		return L.GetGlobal("R").String()
	}
	good := scriptImage(src, proto)
	if got := run(good, "s.lua"); got != "chunk" {
		t.Fatalf("a good image ran the %s", got)
	}
	if got := run(good, "other.lua"); got != "source" {
		t.Fatalf("a chunk of another script name ran: %s", got)
	}
	if got := run(scriptImage(src, nil), "s.lua"); got != "source" {
		t.Fatalf("an image without a chunk ran the %s", got)
	}
	i := strings.Index(string(good), "chunk") // inside the chunk's constant
	bad := append([]byte(nil), good...)
	bad[i] = 'C'
	if got := run(bad, "s.lua"); got != "source" {
		t.Fatalf("a corrupted chunk ran: %s", got)
	}
	L := lua.NewState()
	defer L.Close()
	for _, image := range [][]byte{[]byte(src), good[:len(scriptMagic)], good[:len(scriptMagic)+1]} {
		if _, err := loadScriptImage(L, image, "s.lua"); err == nil {
			t.Fatalf("%q: accepted as a script image", image)
		}
	}
}
