package bindings

import (
	"testing"

	"github.com/ipcscript/ipcscript/ipc"
)

// memObject.Recover reaches each kind's Recover through one of two
// method shapes; a kind whose Recover took another shape would silently
// not be repaired when a process dies.
func TestMemObjectKindsRecover(t *testing.T) {
	for name, v := range map[string]any{
		"semaphore": (*ipc.Semaphore)(nil), "mutex": (*ipc.Mutex)(nil),
		"cond": (*ipc.Cond)(nil), "barrier": (*ipc.Barrier)(nil),
	} {
		switch v.(type) {
		case interface{ Recover(int) bool }, interface{ Recover(int) }:
		default:
			t.Errorf("%s: no Recover(pid int) [bool]: memObject.Recover would not repair it", name)
		}
	}
}
