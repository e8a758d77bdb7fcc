package tests

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestMqueueNames: an anonymous message queue has no name in /dev/mqueue
// while the run lives (the descriptors keep it alive); a public one has,
// q.name, and it is gone once the run ends.
func TestMqueueNames(t *testing.T) {
	t.Parallel()
	mqueueMounted(t)
	cmd := ipcscript("--no-prefix", "names.lua")
	cmd.Dir = writeScript(t, "names.lua", `
local ipc = require("ipc")
local pub = ipc.mqueue("orders", {capacity = 2, msgsize = 64, public = true})
local anon = ipc.mqueue("private", {capacity = 2, msgsize = 64})
ipc.process("look", function()
  -- the run's queues are /dev/mqueue/ipcscript.<runid>.<name>
  local prefix = pub.name:match("^/(ipcscript%.%x+%.)")
  local p = io.popen("ls /dev/mqueue")
  local names = {}
  for n in p:lines() do
    if n:sub(1, #prefix) == prefix then names[#names + 1] = n end
  end
  p:close()
  print("public " .. pub.name)
  print("anonymous " .. tostring(anon.name))
  print("in /dev/mqueue: " .. table.concat(names, " "))
  -- it works all the same
  anon:send("still here")
  print("anonymous receives " .. anon:receive())
end)
`)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^public (/ipcscript\.[0-9a-f]{16}\.orders)$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no public name in:\n%s", out)
	}
	name := string(m[1])
	for _, want := range []string{"anonymous nil", "in /dev/mqueue: " + name[1:], "anonymous receives still here"} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat("/dev/mqueue" + name); !os.IsNotExist(err) {
		t.Errorf("/dev/mqueue%s is still there after the run (%v)", name, err)
	}
}
