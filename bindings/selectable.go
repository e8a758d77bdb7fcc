package bindings

import (
	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

// The objects ipc.select can wait on implement one of these (select.go
// holds the waiting itself).

// queueSelectable is a message object over a shared-memory queue: a
// mailbox, or this process's direct inbox. Readiness is a message in the
// queue; select sleeps on the queue's futex word.
type queueSelectable interface {
	selectQueue() *ipc.Queue
	// selectTake receives one message without blocking and returns its
	// table; ok is false when nothing was there.
	selectTake(L *lua.LState) (v lua.LValue, ok bool, err error)
}

// fdSelectable is an object whose readiness is POLLIN on a descriptor: a
// pipe or FIFO read end, a socket connection, a listener, a POSIX message
// queue.
type fdSelectable interface {
	selectFd() int // the descriptor to poll for POLLIN
	// selectBuffered is true when data is already buffered in this process,
	// so the object is ready without asking the kernel.
	selectBuffered() bool
	// selectTake is called once the object is ready. Message objects (a
	// POSIX queue) receive without blocking and return the value; streams
	// and listeners return (nil, true, nil): select then returns the object
	// itself. ok is false when the readiness was stolen by another process.
	selectTake(L *lua.LState) (v lua.LValue, ok bool, err error)
}
