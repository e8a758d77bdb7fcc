package tests

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipcscript/ipcscript/ipc"
)

// A program outside the run connects to a run's tcp listeners and sends a
// frame claiming to come from the run's process "client" (src 1). The
// private listener (the default) closes its connection without handing it
// to the script, which accepts only the run's own client, whose frame
// names it; the listener declared {public = true} takes the outsider, and
// the script sees its frame as from "outside", not from "client".
func TestSocketTokenRefusesForgedPeer(t *testing.T) {
	client := fmt.Sprintf("client%d", os.Getpid())
	script := filepath.Join(t.TempDir(), "token.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
local priv = ipc.listen("tcp", "127.0.0.1:0")
local pub = ipc.listen("tcp", "127.0.0.1:0", {public = true})
ipc.process("`+client+`", function()
  ipc.receive()   -- once the outsider has been dealt with
  local c = assert(ipc.connect("tcp", priv.address, {timeout = 60}))
  assert(c:send("from the run", {type = "real"}))
  c:receive{timeout = 60}   -- the server closes
end)
ipc.process("server", function()
  print("addresses " .. priv.address .. " " .. pub.address)
  io.stdout:flush()
  local p = assert(pub:accept{timeout = 60})
  local m = assert(p:receive{timeout = 60})
  print("public", m.type, m.src, m.body)
  io.stdout:flush()
  ipc.send("`+client+`", "go")
  local c = assert(priv:accept{timeout = 60})
  local m2 = assert(c:receive{timeout = 60})
  print("private", m2.type, m2.src, m2.body)
  c:close()
end)
`), 0o644)
	cmd := ipcscript("--no-prefix", script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	lines := startLines(t, cmd)
	next := func() string {
		if !lines.Scan() {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the script stopped early: %v\nstderr: %s", lines.Err(), stderr.String())
		}
		return lines.Text()
	}
	f := strings.Fields(next())
	if len(f) != 3 || f[0] != "addresses" {
		t.Fatalf("want the addresses, got %q", f)
	}
	forge := func(addr string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// src 1 is the run's first process, "client"; the body is "forged"
		if err := ipc.WriteFrame(c, &ipc.Message{Type: "forged", Src: 1, Body: append([]byte{0xa6}, "forged"...)}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	private := forge(f[1]) // waits in the backlog until the server accepts there
	defer private.Close()
	public := forge(f[2])
	defer public.Close()
	if got, want := next(), "public\tforged\toutside\tforged"; got != want {
		t.Fatalf("public listener: %q, want %q", got, want)
	}
	if got, want := next(), "private\treal\t"+client+"\tfrom the run"; got != want {
		t.Fatalf("private listener: %q, want %q (the forged frame must never reach the script)", got, want)
	}
	// The private listener closed the outsider's connection unread.
	private.SetReadDeadline(time.Now().Add(60 * time.Second)) // a guard, not a speed
	if n, err := private.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("the forged connection to the private listener is still open (read %d, %v)", n, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
}
