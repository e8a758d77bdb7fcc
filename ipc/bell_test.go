package ipc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// testWord is a futex word in shared memory of this process, as a queue's
// word is.
func testWord(t *testing.T) *atomic.Uint32 {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return (*atomic.Uint32)(unsafe.Pointer(&mem[0]))
}

func needBell(t *testing.T) *bell {
	t.Helper()
	b := ownBell()
	if b == nil {
		t.Skip("no io_uring futex wait here (kernel before 6.7, io_uring disabled or refused)")
	}
	return b
}

// A sleep on the bell returns at once when the word has changed, at its
// deadline (its request cancelled and completed: the next sleep works),
// and when a FUTEX_WAKE reaches it.
func TestBellSleepWake(t *testing.T) {
	b := needBell(t)
	for _, fd := range []int{b.fd, b.evFd} {
		// A program the child starts (os.execute) inherits neither.
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
			t.Fatalf("descriptor %d: flags %#x, %v: want close-on-exec", fd, fl, err)
		}
	}
	w := testWord(t)
	addr := (*uint32)(unsafe.Pointer(w))
	if err := sleepBell(addr, 1, time.Time{}); err != nil {
		t.Fatalf("word already changed: %v, want nil", err)
	}
	c := b.cancelled.Load()
	err := sleepBell(addr, 0, time.Now().Add(5*time.Millisecond))
	for err == nil { // a spurious wake; nobody wakes this word
		err = sleepBell(addr, 0, time.Now().Add(5*time.Millisecond))
	}
	if err != ErrTimeout {
		t.Fatalf("nobody wakes: %v, want ErrTimeout", err)
	}
	if n := b.cancelled.Load() - c; n == 0 {
		t.Fatal("a sleep that reached its deadline cancelled no request")
	}
	done := make(chan error, 1)
	go func() {
		var err error
		for err == nil && w.Load() == 0 {
			err = sleepBell(addr, 0, time.Now().Add(time.Minute))
		}
		done <- err
	}()
	for b.sleeps.Load() == 0 || !b.busy.Load() {
		time.Sleep(time.Millisecond)
	}
	w.Store(1)
	FutexWake(addr, 1)
	if err := <-done; err != nil {
		t.Fatalf("woken: %v, want nil", err)
	}
	if b.busy.Load() {
		t.Fatal("the bell is still busy after its sleep")
	}
}

// With SetHoldP, a queue sleep that outlasts the held one goes on on the
// bell, and the object's next sleeps go there at once.
func TestSpinnerSleepBell(t *testing.T) {
	b := needBell(t)
	defer SetHoldP(holdP.Load())
	SetHoldP(true)
	var sp spinner
	w := testWord(t)
	addr := (*uint32)(unsafe.Pointer(w))
	before := b.sleeps.Load()
	if err := sleepOut(&sp, addr, holdMax+5*time.Millisecond); err != ErrTimeout {
		t.Fatalf("%v, want ErrTimeout", err)
	}
	if sp.long.Load() != 1 || b.sleeps.Load() == before {
		t.Fatalf("a sleep past holdMax: long %d, %d bell sleeps; want 1 and at least 1", sp.long.Load(), b.sleeps.Load()-before)
	}
	before = b.sleeps.Load()
	if err := sp.sleep(addr, 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if b.sleeps.Load() != before+1 {
		t.Fatal("the sleep after a long one was not on the bell")
	}
}

// Token rings of processes run as a run's children do (GOMAXPROCS=1,
// holding the P; holdMax shortened so that sleeps reach the bell): each
// process receives from its inbox and sends to the next. Every token makes
// every hop, in order; a lost wake shows as a ring that stops, and the
// guard then names the process that waits to receive with messages
// queued.
func TestBellRings(t *testing.T) {
	t.Setenv(holdEnv, "1")
	t.Setenv(holdMaxEnv, "300us")
	rings, procs, laps := 3, 16, 30
	if testing.Short() {
		rings, procs, laps = 2, 8, 10
	}
	st, err := NewRegion("bell rings", rings*procs*64)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	type node struct {
		c       *testChild
		in      *Queue
		ring, i int
	}
	var nodes []node
	for r := range rings {
		qs := make([]*Queue, procs)
		for i := range qs {
			qs[i] = newTestQueue(t, QueueConfig{Name: fmt.Sprintf("ring %d inbox %d", r, i), Capacity: Unbounded, Bytes: 64 << 10})
		}
		tokens := r + 1
		for i := range procs {
			c := startChild(t, "bell-ring", []*os.File{st.File, qs[i].File(), qs[(i+1)%procs].File()},
				strconv.Itoa(len(nodes)), strconv.Itoa(i), strconv.Itoa(procs), strconv.Itoa(tokens), strconv.Itoa(laps))
			nodes = append(nodes, node{c, qs[i], r, i})
		}
	}
	slot := func(k int) *ringSlot { return (*ringSlot)(unsafe.Pointer(&st.Mem[k*64])) }
	// The guard: no hop anywhere for a minute.
	const guard = time.Minute
	var last uint64
	lastMove := time.Now()
	for k := 0; k < len(nodes); {
		select {
		case <-nodes[k].c.done:
			k++
			continue
		case <-time.After(100 * time.Millisecond):
		}
		var sum uint64
		for j, n := range nodes {
			sum += slot(j).hops.Load()
			select {
			case <-n.c.done:
				if n.c.err != nil {
					t.Fatalf("ring %d process %d: %v\n%s", n.ring, n.i, n.c.err, n.c.out.String())
				}
			default:
			}
		}
		if sum != last {
			last, lastMove = sum, time.Now()
			continue
		}
		if time.Since(lastMove) < guard {
			continue
		}
		var stuck []string
		for j, n := range nodes {
			if s := slot(j); s.inRecv.Load() != 0 && n.in.Len() > 0 {
				stuck = append(stuck, fmt.Sprintf("ring %d process %d waits to receive with %d queued (word %d, %d hops, %d bell sleeps)",
					n.ring, n.i, n.in.Len(), n.in.h.word.Load(), s.hops.Load(), s.bellSleeps.Load()))
			}
		}
		t.Fatalf("no hop for %v (%d hops made): a lost wake?\n%s", guard, sum, strings.Join(stuck, "\n"))
	}
	var bellSleeps, hops uint64
	for j, n := range nodes {
		n.c.wait(t)
		bellSleeps += slot(j).bellSleeps.Load()
		hops += slot(j).hops.Load()
	}
	want := uint64(0)
	for r := range rings {
		want += uint64((r+1)*laps*procs + procs - 1) // every token's hops, and the stop
	}
	if hops != want {
		t.Fatalf("%d hops received, want %d", hops, want)
	}
	if ownBell() != nil && bellSleeps == 0 {
		t.Fatal("no process slept on the bell: the rings did not test it")
	}
	t.Logf("%d hops, %d bell sleeps", hops, bellSleeps)
}

// ringSlot is a ring process's 64-byte slot in the test's status region.
type ringSlot struct {
	hops       atomic.Uint64 // messages received
	bellSleeps atomic.Uint64 // this process's sleeps on the bell, as of its latest receive
	inRecv     atomic.Uint32 // 1 while in Receive
}

// holdMaxEnv sets holdMax in a queue child.
const holdMaxEnv = "IPC_TEST_HOLDMAX"

func init() {
	if d, err := time.ParseDuration(os.Getenv(holdMaxEnv)); err == nil && os.Getenv(childEnv) != "" {
		holdMax = d
	}
	registerChild("bell-ring", childBellRing)
}

// childBellRing is one process of TestBellRings: args slot, index, procs,
// tokens, laps; descriptors: the status region, its inbox, the next
// process's inbox. Process 0 starts the tokens (Seq = token<<32 | hop),
// retires each after laps laps, then sends the stop round and exits.
func childBellRing() {
	a := make([]int, 5)
	for i, s := range childArgs() {
		a[i], _ = strconv.Atoi(s)
	}
	k, index, procs, tokens, laps := a[0], a[1], a[2], a[3], a[4]
	r, err := OpenRegion(childFile(0))
	if err != nil {
		childFatalf("%v", err)
	}
	s := (*ringSlot)(unsafe.Pointer(&r.Mem[k*64]))
	in, out := childQueue(1), childQueue(2)
	send := func(m *Message) {
		if err := out.Send(m, WaitOpts{}); err != nil {
			childFatalf("send: %v", err)
		}
	}
	next := make([]uint64, tokens) // the hop expected next of each token
	for tok := range next {
		next[tok] = uint64(index)
		if index == 0 {
			next[tok] = uint64(procs)
			send(&Message{Seq: uint64(tok)<<32 | 1})
		}
	}
	live := tokens
	var m Message
	for {
		s.inRecv.Store(1)
		err := in.Receive(Filter{}, WaitOpts{}, &m)
		s.inRecv.Store(0)
		if err != nil {
			childFatalf("receive: %v", err)
		}
		s.hops.Add(1)
		if b := ownBell(); b != nil {
			s.bellSleeps.Store(b.sleeps.Load())
		}
		if m.Type == "stop" {
			if index != procs-1 {
				send(&Message{Type: "stop"})
			}
			break
		}
		tok, hop := m.Seq>>32, m.Seq&(1<<32-1)
		if tok >= uint64(tokens) || hop != next[tok] {
			childFatalf("token %d hop %d, want hop %d", tok, hop, next[tok])
		}
		next[tok] += uint64(procs)
		if index == 0 && hop == uint64(laps*procs) {
			if live--; live == 0 {
				send(&Message{Type: "stop"})
				break
			}
			continue
		}
		send(&Message{Seq: m.Seq + 1})
	}
}
