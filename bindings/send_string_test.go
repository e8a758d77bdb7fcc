package bindings

import (
	"fmt"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

// inRunHost is the parent's host seen as a process body's: afterRun is
// false, so a send to a full mailbox waits for room.
type inRunHost struct{ Host }

func (inRunHost) Role() Role { return RoleChild }

// box:send(s) to a full mailbox in a process body (sendString's waiting
// send): each message is sent once, in order, with the next seq, as room
// is made by a receiver elsewhere.
func TestSendStringWaitsForRoom(t *testing.T) {
	L, env := parentState(t, twoProcs) // jobs: capacity 4
	env.Host = inRunHost{env.Host}
	ud := L.GetGlobal("box").(*lua.LUserData)
	q := ud.Value.(*mailbox).q
	const n, taken = 12, 8
	got := make(chan string, n)
	go func() {
		var m ipc.Message
		for i := 0; i < taken; i++ {
			if err := q.Receive(ipc.Filter{}, ipc.WaitOpts{}, &m); err != nil {
				got <- err.Error()
				return
			}
			got <- fmt.Sprintf("%s seq=%d", m.Body[1:], m.Seq) // a fixstr's length byte, then the string
		}
	}()
	if err := L.DoString(fmt.Sprintf(`for i = 1, %d do assert(box:send("m" .. i) == true) end`, n)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= taken; i++ {
		if s, want := <-got, fmt.Sprintf("m%d seq=%d", i, i); s != want {
			t.Fatalf("receiver got %q, want %q", s, want)
		}
	}
	if q.Len() != n-taken {
		t.Fatalf("%d queued, want %d", q.Len(), n-taken)
	}
	err := L.DoString(fmt.Sprintf(`
		for i = %d, %d do
			local m = box:receive({into = {}})
			assert(m.body == "m" .. i and m.seq == i, tostring(m.body) .. " " .. tostring(m.seq))
		end
		local v, err = box:receive({block = false})
		assert(v == nil and err == "empty", tostring(err))
		box:close()
		local ok, err = pcall(box.send, box, "x")
		assert(not ok and err:find("the mailbox is closed"), tostring(err))`, taken+1, n))
	if err != nil {
		t.Fatal(err)
	}
}
