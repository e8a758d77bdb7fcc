package ipc

import (
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// Stress: processes that never die add 1 to a counter in shared memory
// (read, yield now and then, write: not atomic) under the mutex, while
// other processes lock with short timeouts, try-locks and plain locks and
// are SIGKILLed at random points (in their sleep, holding the lock, inside
// the waitlist's lock) and replaced. Asserted: the counter is exact, and no
// process ever finds another inside the critical section (a flag holds the
// pid of the process inside; only a lock that reports its owner died may
// find a dead one's pid there).

func init() {
	registerChild("mutex-stress-incr", childMutexStressIncr)
	registerChild("mutex-stress-disturb", childMutexStressDisturb)
}

// The shared block: counter u64 at 0, inside u32 at 8, violations u32 at 12.
type stressBlock struct {
	counter    uint64
	inside     uint32
	violations uint32
}

func stressShared(m *Shm) *stressBlock { return (*stressBlock)(unsafe.Pointer(&m.data[0])) }

// enter marks this process inside the critical section; a pid already there
// is a second holder, unless the lock said its owner died (the dead
// holder's mark is left over).
func (b *stressBlock) enter(me uint32, died bool) {
	if prev := atomic.SwapUint32(&b.inside, me); prev != 0 && !(died && ownerDead(prev)) {
		atomic.AddUint32(&b.violations, 1)
	}
}

func (b *stressBlock) leave(me uint32) {
	if !atomic.CompareAndSwapUint32(&b.inside, me, 0) {
		atomic.AddUint32(&b.violations, 1)
	}
}

func openStress() (*Mutex, *stressBlock) {
	mu, err := OpenMutex(childFile(0), "m")
	if err != nil {
		childFatalf("%v", err)
	}
	m, err := OpenShm(childFile(1), "block")
	if err != nil {
		childFatalf("%v", err)
	}
	return mu, stressShared(m)
}

func childMutexStressIncr() {
	mu, b := openStress()
	n, _ := strconv.Atoi(childArgs()[0])
	me := uint32(os.Getpid())
	for i := range n {
		died, err := mu.Lock(WaitOpts{Timeout: 2 * time.Minute}) // a liveness guard only
		if err != nil {
			childFatalf("lock %d: %v", i, err)
		}
		b.enter(me, died)
		x := b.counter
		if i%7 == 0 {
			runtime.Gosched()
		}
		b.counter = x + 1
		b.leave(me)
		if err := mu.Unlock(); err != nil {
			childFatalf("unlock %d: %v", i, err)
		}
	}
}

func childMutexStressDisturb() {
	mu, b := openStress()
	me := uint32(os.Getpid())
	for i := 0; ; i++ {
		var o WaitOpts
		switch i % 4 {
		case 0:
			o.NonBlocking = true
		case 1, 2:
			o.Timeout = time.Duration(rand.IntN(2000)) * time.Microsecond
		}
		died, err := mu.Lock(o)
		switch err {
		case nil:
		case ErrTimeout, ErrEmpty:
			continue
		default:
			childFatalf("lock: %v", err)
		}
		b.enter(me, died)
		for range rand.IntN(200) {
			runtime.Gosched()
		}
		b.leave(me)
		if err := mu.Unlock(); err != nil {
			childFatalf("unlock: %v", err)
		}
	}
}

func TestMutexStressKills(t *testing.T) {
	const incrementers, disturbers, n = 3, 3, 3000
	mu := newTestMutex(t, "m")
	shm := newTestShm(t, "block", 64)
	b := stressShared(shm)
	files := []*os.File{mu.File(), shm.File()}
	var incs []*testChild
	for range incrementers {
		incs = append(incs, startChild(t, "mutex-stress-incr", files, strconv.Itoa(n)))
	}
	dist := make([]*testChild, disturbers)
	for i := range dist {
		dist[i] = startChild(t, "mutex-stress-disturb", files)
	}
	allDone := make(chan struct{})
	go func() {
		for _, c := range incs {
			<-c.done
		}
		close(allDone)
	}()
	var killed []int
	kill := func(i int) {
		c := dist[i]
		c.Process.Signal(syscall.SIGKILL)
		<-c.done
		if len(killed)%2 == 0 { // half the time the supervisor's Recover, half the sleepers find out
			mu.Recover(c.Process.Pid)
		}
		killed = append(killed, c.Process.Pid)
	}
	for running := true; running; {
		select {
		case <-allDone:
			running = false
		case <-time.After(time.Duration(1+rand.IntN(20)) * time.Millisecond):
			i := rand.IntN(disturbers)
			kill(i)
			dist[i] = startChild(t, "mutex-stress-disturb", files)
		}
	}
	for i := range dist {
		kill(i)
	}
	for _, c := range incs {
		c.wait(t)
	}
	for _, pid := range killed { // as the supervisor does for every exit
		mu.Recover(pid)
	}
	t.Logf("%d disturbers killed", len(killed))
	if t.Failed() {
		return
	}
	if b.counter != incrementers*n {
		t.Errorf("counter %d, want %d: increments were lost", b.counter, incrementers*n)
	}
	if v := atomic.LoadUint32(&b.violations); v != 0 {
		t.Errorf("%d times a process found another inside the critical section", v)
	}
	if h := mu.Holder(); h != 0 {
		t.Errorf("still held by %d after every process ended", h)
	}
	if q := mu.wl.queued(); q != 0 {
		t.Errorf("%d still queued", q)
	}
}
