package bindings

import (
	"fmt"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// recordingHost is a cross-cutting concern added through the Host
// interface alone: it wraps the parent's host and records every object
// made, with the descriptors it hands over, without a line in any kind
// file. Tracing or a second transport is added the same way.
type recordingHost struct {
	Host
	made []string
}

func (h *recordingHost) Make(d *Decl, m Maker) (bool, error) {
	made, err := h.Host.Make(d, m)
	if made && err == nil {
		var roles []string
		for _, f := range d.Files {
			roles = append(roles, f.Role)
		}
		h.made = append(h.made, fmt.Sprintf("%s %s [%s]", d.Kind, d.Name, strings.Join(roles, " ")))
	}
	return made, err
}

// TestHostSeesEveryObject declares one object of most kinds under a
// wrapping host and checks that each was made through it, in order, with
// its descriptors; and that the checker's host makes nothing at all.
func TestHostSeesEveryObject(t *testing.T) {
	script := `
		local ipc = require("ipc")
		local p = ipc.pipe()
		local box = ipc.mailbox("jobs")
		local s = ipc.semaphore("slots", 2)
		local m = ipc.mutex("lock")
		local c = ipc.cond("ready")
		local b = ipc.barrier("gate", 2)
		local mem = ipc.shm("mem", 64)
		local v = ipc.shared("vars", {n = "i32"})
		local q = ipc.mqueue("q")
		local f = ipc.fifo("f")
		local l = ipc.listen("tcp", "127.0.0.1:0")
	`
	want := []string{
		"pipe #1 [r w]", "mailbox jobs [mem]", "semaphore slots [mem]", "mutex lock [mem]",
		"cond ready [mem]", "barrier gate [mem]", "shm mem [mem]", "shared vars [mem]",
		"mqueue q [q]", "fifo f []", "listener 127.0.0.1:0 [l]",
	}

	h := &recordingHost{Host: ParentHost()}
	L := lua.NewState()
	env := &Env{Host: h, Script: "test.lua"}
	Preload(L, env)
	err := L.DoString(script)
	for _, d := range env.Decls {
		if r, ok := d.Object.(Releaser); ok {
			r.Release()
		}
		for _, f := range d.Files {
			f.File.Close()
		}
	}
	if rerr := env.RemoveRunDir(); rerr != nil {
		t.Error(rerr)
	}
	L.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(h.made, "\n"); got != strings.Join(want, "\n") {
		t.Fatalf("made through the host:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}

	ch := &recordingHost{Host: CheckHost()}
	L = lua.NewState()
	defer L.Close()
	cenv := &Env{Host: ch, Script: "test.lua"}
	Preload(L, cenv)
	if err := L.DoString(script); err != nil {
		t.Fatal(err)
	}
	if len(ch.made) != 0 || len(cenv.Decls) != len(want) {
		t.Fatalf("check: made %v, declared %d; want nothing made, %d declared", ch.made, len(cenv.Decls), len(want))
	}
}
