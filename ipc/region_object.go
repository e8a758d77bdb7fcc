package ipc

import (
	"fmt"
	"math"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// regionObject is what every object in a Region shares: the script's names
// for it, the mapping, the wait-status hook, and a use count so that Close
// never unmaps memory another goroutine is still using (a call after Close
// gets an error instead of a fault).
//
// The use count is a Go atomic every call touches on entry and exit; besides
// keeping the mapping alive it gives the race detector the happens-before
// edges that the shared-memory atomics (which it ignores) carry.
type regionObject struct {
	kind, name string
	region     *Region
	refs       atomic.Int64 // 1 while open, plus one per call in flight
	closed     atomic.Bool
	unmapped   atomic.Bool
	ws         *WaitStatus
	id         int32
}

func (o *regionObject) init(kind, name string, r *Region) {
	o.kind, o.name, o.region, o.id = kind, name, r, -1
	o.refs.Store(1)
}

// enter starts a call; exit must follow when it returns nil.
func (o *regionObject) enter(op string) error {
	o.refs.Add(1)
	if o.closed.Load() {
		o.exit()
		return o.errorf(op, "%s is closed", o.kind)
	}
	return nil
}

func (o *regionObject) exit() {
	if o.refs.Add(-1) == 0 && o.unmapped.CompareAndSwap(false, true) {
		o.region.Close()
	}
}

// close marks the object closed, runs wake (to release this process's
// sleepers, which then see closed) and drops the open reference; the last
// call in flight unmaps.
func (o *regionObject) close(wake func()) error {
	if o.closed.Swap(true) {
		return nil
	}
	if wake != nil {
		wake()
	}
	o.exit()
	return nil
}

// isClosed is checked by sleepers after each wakeup.
func (o *regionObject) isClosed() bool { return o.closed.Load() }

// errorf formats an error in the script's words: `shm "m": get: ...`.
func (o *regionObject) errorf(op, format string, args ...any) error {
	return fmt.Errorf("%s %q: %s: %s", o.kind, o.name, op, fmt.Sprintf(format, args...))
}

// setStatus is SetStatus for every region object.
func (o *regionObject) setStatus(ws *WaitStatus, object int32) { o.ws, o.id = ws, object }

// openRegionChecked maps an inherited memfd and checks that it holds an
// object of the expected kind, so a miswired descriptor fails clearly. On
// success the Region owns f; on failure f is left to the caller.
func openRegionChecked(f *os.File, kind, name string, magic uint32, minSize int) (*Region, error) {
	if f == nil {
		return nil, fmt.Errorf("%s %q: open: no descriptor", kind, name)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s %q: open: %w", kind, name, err)
	}
	if st.Size() < int64(minSize) || st.Size() > math.MaxInt32 {
		return nil, fmt.Errorf("%s %q: open: descriptor %s does not hold a %s (size %d)", kind, name, f.Name(), kind, st.Size())
	}
	r, err := OpenRegion(f)
	if err != nil {
		return nil, fmt.Errorf("%s %q: open: %w", kind, name, err)
	}
	if load32(r.U32(0)) != magic {
		unix.Munmap(r.Mem)
		return nil, fmt.Errorf("%s %q: open: descriptor %s does not hold a %s", kind, name, f.Name(), kind)
	}
	return r, nil
}
