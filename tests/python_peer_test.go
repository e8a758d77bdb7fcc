package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pythonWithMsgpack finds a python3 that can import msgpack (Debian's
// python3-msgpack installs for /usr/bin/python3, which may not be the
// python3 first on PATH).
func pythonWithMsgpack(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			tried = append(tried, py+": not found")
			continue
		}
		if out, err := exec.Command(path, "-c", "import msgpack").CombinedOutput(); err != nil {
			tried = append(tried, fmt.Sprintf("%s: %s", path, strings.TrimSpace(string(out))))
			continue
		}
		return path
	}
	t.Skipf("no python3 with the msgpack module (%s); install python3-msgpack", strings.Join(tried, "; "))
	return ""
}

// TestPythonPeer: a Python program written from docs/LUA_API.md with the
// stock msgpack module exchanges framed messages with a script's process
// over TCP, both ways. Python reads a Lua table with a nil hole with its
// default decoder and sees the process's number; the script sees the
// Python side as "outside" with its address, its timestamp as seconds, an
// unsupported extension as nil, "invalid" naming the sender, and the next
// message after it.
func TestPythonPeer(t *testing.T) {
	t.Parallel()
	py := pythonWithMsgpack(t)
	peer := exec.Command(py, filepath.Join("peer", "msgpack_peer.py"))
	peer.Stderr = os.Stderr
	lines := startLines(t, peer)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("the Python peer stopped early: %v", lines.Err())
		}
		return lines.Text()
	}
	var port int
	if _, err := fmt.Sscanf(next(), "port %d", &port); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	script := filepath.Join(t.TempDir(), "peer.lua")
	os.WriteFile(script, []byte(`local ipc = require("ipc")
local addr = arg[1]
ipc.process("other", function() end)
ipc.process("client", function()
  local c = assert(ipc.connect("tcp", addr))
  assert(c:send({name = "lua", list = {1, nil, 3}, pi = 3.25, bin = "\255\0"}, {type = "hello"}))
  local m = assert(c:receive())
  print("reply", m.type, m.src, m.peer == addr, m.dst, m.seq, m.body.n, m.body.echo.name, m.body.echo.list[3], m.body.echo.list[2])
  local s = assert(c:receive())
  print("stamp", s.src, ("%.1f"):format(s.body))
  local v, err, why = c:receive()
  print("ext", tostring(v), err, why)
  local a = assert(c:receive())
  print("after", a.type, a.body)
  c:close()
end)
`), 0o644)
	run := ipcscript("--no-prefix", script, addr)
	got, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("ipcscript: %v\n%s", err, got)
	}

	// What Python decoded, with its default options.
	gotLine, ok := strings.CutPrefix(next(), "got ")
	if !ok {
		t.Fatalf("python: %q", gotLine)
	}
	var fromLua struct {
		Type string
		Src  int
		Seq  int
		Body map[string]any
	}
	if err := json.Unmarshal([]byte(gotLine), &fromLua); err != nil {
		t.Fatalf("%v: %s", err, gotLine)
	}
	if fromLua.Type != "hello" || fromLua.Src != 2 || fromLua.Seq != 1 {
		t.Errorf("python got type %q src %d seq %d, want hello from process 2 (client), seq 1", fromLua.Type, fromLua.Src, fromLua.Seq)
	}
	if b, _ := json.Marshal(fromLua.Body); string(b) != `{"bin":{"bytes":"ff00"},"list":[1,null,3],"name":"lua","pi":3.25}` {
		t.Errorf("python decoded the body as %s", b)
	}
	if l := next(); l != "closed" {
		t.Errorf("python: %q, want closed", l)
	}
	peer.Wait()

	// What the script saw.
	for _, want := range []string{
		"reply\treply\toutside\ttrue\tclient\t1\t42\tlua\t3\tnil",
		"stamp\toutside\t1700000000.5",
		fmt.Sprintf(`ext	nil	invalid	tcp connection to %q: receive: message from outside (%s): body is not a valid message body (MessagePack): at byte 8: MessagePack extension type 5 is not supported (only the timestamp, type -1, is)`, addr, addr),
		"after\tafter\tstill there",
	} {
		if !strings.Contains(string(got), want+"\n") {
			t.Errorf("the script's output lacks %q:\n%s", want, got)
		}
	}
}
