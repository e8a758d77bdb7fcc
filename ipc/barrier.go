package ipc

import (
	"fmt"
	"math"
	"os"
	"sync/atomic"
)

// Barrier is a reusable barrier for n parties shared by the processes of a
// run (as pthread_barrier with PTHREAD_PROCESS_SHARED): Wait returns once
// n calls have arrived, and exactly one of them, the last to arrive, is told
// it is the serial one. Then the barrier is ready for the next phase.
//
// Layout of the memfd:
//
//	0   magic
//	4   n        parties per phase
//	8   lock     a plock (waitlist_linux.go)
//	12  state    phase<<16 | arrived: the futex word sleepers wait on
//	16  broken   1 once a party died inside the barrier
//	64  arrived  n pids: who has arrived in this phase
//
// Phase and count share one word so that the last arrival ends a phase
// with a single store (a process killed there leaves no half-ended phase).
// Sleepers compare only the phase, which changes once per phase; it wraps
// after 65536 phases, long after every sleeper of a phase has seen it
// change (a phase cannot end without all of them).
//
// Broken. A party killed while it waits inside the barrier would hang the
// others for ever; instead the supervisor's Recover marks the barrier
// broken, and every wait, now and later, returns ErrClosed (as Java's
// BrokenBarrierException). A timed-out wait withdraws its arrival, so the
// barrier stays usable.
type Barrier struct {
	obj   regionObject
	n     int
	lk    plock
	state *uint32
	brk   *uint32
}

const (
	barrierMagic = 0x52524249 // "IBRR"
	// MaxBarrierParties bounds n (the count shares a 16-bit field).
	MaxBarrierParties = 1<<16 - 1
)

// NewBarrier creates a barrier for n parties (1 <= n <= MaxBarrierParties).
func NewBarrier(name string, n int) (*Barrier, error) {
	o := regionObject{kind: "barrier", name: name}
	if n < 1 || n > MaxBarrierParties {
		return nil, o.errorf("create", "party count %d must be between 1 and %d", n, MaxBarrierParties)
	}
	r, err := NewRegion("barrier:"+name, 64+4*n)
	if err != nil {
		return nil, o.errorf("create", "%v", err)
	}
	store32(r.U32(4), uint32(n))
	store32(r.U32(0), barrierMagic)
	return newBarrier(name, r), nil
}

// OpenBarrier maps a barrier created by NewBarrier from its inherited
// memfd. The Barrier owns f from then on.
func OpenBarrier(f *os.File, name string) (*Barrier, error) {
	r, err := openRegionChecked(f, "barrier", name, barrierMagic, 68)
	if err != nil {
		return nil, err
	}
	n := int(load32(r.U32(4)))
	if n < 1 || n > MaxBarrierParties || 64+4*n > len(r.Mem) {
		r.Close()
		return nil, fmt.Errorf("barrier %q: open: damaged header (n = %d)", name, n)
	}
	return newBarrier(name, r), nil
}

func newBarrier(name string, r *Region) *Barrier {
	n := int(load32(r.U32(4)))
	b := &Barrier{
		n:     n,
		lk:    plock{w: r.U32(8), pid: uint32(os.Getpid())},
		state: r.U32(12),
		brk:   r.U32(16),
	}
	b.obj.init("barrier", name, r)
	return b
}

// SetStatus makes the barrier record its waits in ws under the given
// object id (nil: don't record).
func (b *Barrier) SetStatus(ws *WaitStatus, object int32) { b.obj.setStatus(ws, object) }

// Name is the script's name for the barrier.
func (b *Barrier) Name() string { return b.obj.name }

// File is the memfd to hand to a child through ExtraFiles.
func (b *Barrier) File() *os.File { return b.obj.region.File }

// Parties is n.
func (b *Barrier) Parties() int { return b.n }

// Arrived is how many parties wait in the current phase (a snapshot).
func (b *Barrier) Arrived() int {
	if b.obj.enter("arrived") != nil {
		return 0
	}
	defer b.obj.exit()
	return int(load32(b.state) & 0xffff)
}

// Broken reports whether a party died inside the barrier.
func (b *Barrier) Broken() bool {
	if b.obj.enter("broken") != nil {
		return false
	}
	defer b.obj.exit()
	return load32(b.brk) != 0
}

func (b *Barrier) pid(i int) *uint32 { return b.obj.region.U32(64 + 4*i) }

// lock takes the barrier's lock; a holder that died is harmless here (the
// state word is always whole, the pid list is only advice for Recover).
func (b *Barrier) lock() { b.lk.lock() }

// Wait arrives at the barrier and waits until n parties have arrived in
// this phase. serial is true for exactly one party per phase (the last to
// arrive). It returns ErrClosed when the barrier is broken, ErrTimeout when
// o.Timeout passes first (the arrival is withdrawn), ErrEmpty with
// NonBlocking when the phase is not complete with this arrival (nothing is
// recorded then).
func (b *Barrier) Wait(o WaitOpts) (serial bool, err error) {
	serial, _, err = b.WaitArrive(o, nil)
	return serial, err
}

// WaitArrive is Wait that also says which phase the arrival counted in,
// and calls arrive(phase), when not nil, under the barrier's lock just
// before the arrival counts (so before it can end the phase, and never
// for a wait that does not arrive: broken, or "empty"). A traced run
// leaves the party's clock for that phase there.
func (b *Barrier) WaitArrive(o WaitOpts, arrive func(phase uint32)) (serial bool, phase uint32, err error) {
	if err := b.obj.enter("wait"); err != nil {
		return false, 0, err
	}
	defer b.obj.exit()
	deadline := o.Deadline()
	b.lock()
	if load32(b.brk) != 0 {
		b.lk.unlock()
		return false, phase, ErrClosed
	}
	st := load32(b.state)
	phase, count := st>>16, int(st&0xffff)
	if count+1 >= b.n { // the last party: end the phase
		if arrive != nil {
			arrive(phase)
		}
		atomic.StoreUint32(b.state, (phase+1)<<16)
		b.lk.unlock()
		FutexWake(b.state, math.MaxInt32)
		b.obj.ws.Done()
		return true, phase, nil
	}
	if o.NonBlocking {
		b.lk.unlock()
		return false, phase, ErrEmpty
	}
	if arrive != nil {
		arrive(phase)
	}
	store32(b.pid(count), b.lk.pid)
	atomic.StoreUint32(b.state, phase<<16|uint32(count+1))
	b.lk.unlock()

	b.obj.ws.Enter(OpBarrierWait, b.obj.id, -1, !deadline.IsZero())
	defer b.obj.ws.Leave()
	for {
		cur := load32(b.state)
		if cur>>16 != phase {
			b.obj.ws.Done()
			return false, phase, nil
		}
		if load32(b.brk) != 0 {
			return false, phase, ErrClosed
		}
		if b.obj.isClosed() {
			return false, phase, b.obj.errorf("wait", "barrier was closed while waiting")
		}
		switch err := FutexWait(b.state, cur, deadline); err {
		case nil:
		case ErrTimeout:
			if b.withdraw(phase) {
				return false, phase, ErrTimeout
			}
			b.obj.ws.Done() // the phase ended as the deadline passed
			return false, phase, nil
		default:
			return false, phase, b.obj.errorf("wait", "futex: %v", err)
		}
	}
}

// withdraw takes back this process's arrival in phase, unless the phase
// has ended (false).
func (b *Barrier) withdraw(phase uint32) bool {
	b.lock()
	defer b.lk.unlock()
	st := load32(b.state)
	if st>>16 != phase {
		return false
	}
	count := int(st & 0xffff)
	for i := 0; i < count; i++ {
		if load32(b.pid(i)) == b.lk.pid {
			store32(b.pid(i), load32(b.pid(count-1)))
			break
		}
	}
	atomic.StoreUint32(b.state, phase<<16|uint32(count-1))
	return true
}

// Recover breaks the barrier if process pid, which died, was waiting in
// it: every party waiting now, or arriving later, gets ErrClosed. The
// supervisor calls it for every child it reaps.
func (b *Barrier) Recover(pid int) bool {
	if pid <= 0 || pid > math.MaxInt32 || b.obj.enter("recover") != nil {
		return false
	}
	defer b.obj.exit()
	if !ownerDead(uint32(pid)) {
		return false
	}
	if !b.lk.takeOver(uint32(pid)) {
		b.lock()
	}
	st := load32(b.state)
	in := false
	for i := 0; i < int(st&0xffff) && i < b.n; i++ {
		if load32(b.pid(i)) == uint32(pid) {
			in = true
		}
	}
	if in {
		store32(b.brk, 1)
	}
	b.lk.unlock()
	if in {
		FutexWake(b.state, math.MaxInt32)
	}
	return in
}

// Close unmaps the barrier in this process. Goroutines of this process
// waiting in it are released with an error.
func (b *Barrier) Close() error {
	return b.obj.close(func() { FutexWake(b.state, math.MaxInt32) })
}

// Granted reports whether process pid, which says it waits in the barrier,
// has in fact been released: it is not among the arrivals of the current
// phase, so its phase ended and it is about to run. The deadlock watch asks.
func (b *Barrier) Granted(pid int) bool {
	if pid <= 0 || b.obj.enter("granted") != nil {
		return false
	}
	defer b.obj.exit()
	st := load32(b.state)
	for i := 0; i < int(st&0xffff) && i < b.n; i++ {
		if load32(b.pid(i)) == uint32(pid) {
			return false
		}
	}
	return true
}
