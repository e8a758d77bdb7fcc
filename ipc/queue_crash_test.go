package ipc

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Crash safety: a process SIGKILLed anywhere in the queue's critical
// sections must leave a queue that Recover (or the next locker) repairs,
// with every message either delivered exactly once or still queued.

func init() {
	registerChild("queue-stopat", childStopAt)
	registerChild("queue-hammer", childHammer)
	registerChild("queue-exit", func() {})
}

// childStopAt: arg is a point. The child opens the queue on fd 3, runs an
// operation that stops at that point inside the critical section (holding
// the lock), prints "stopped" and waits to be killed.
func childStopAt() {
	q := childQueue(0)
	point := childArgs()[0]
	stop := func() {
		fmt.Println("stopped")
		time.Sleep(time.Hour)
	}
	at := map[string]hookPoint{"written": hookWritten, "committed": hookCommitted, "taken": hookTaken}
	if point == "lock" {
		q.lock()
		stop()
	}
	want, ok := at[point]
	if !ok {
		childFatalf("unknown point %q", point)
	}
	testHook = func(p hookPoint) {
		if p == want {
			stop()
		}
	}
	if want == hookTaken {
		var m Message
		q.Receive(Filter{}, WaitOpts{}, &m)
	} else {
		q.Send(msg(9, 0, "", "crash"), WaitOpts{})
	}
	childFatalf("operation finished without stopping at %s", point)
}

// stopChildAt starts a stopat child and returns once it is stopped holding
// q's lock. The caller kills and reaps it.
func stopChildAt(t *testing.T, q *Queue, point string) *os.Process {
	t.Helper()
	c := startStopping(t, "queue-stopat", []*os.File{q.File()}, point)
	awaitStopped(t, c)
	if owner := q.h.lock.Load() &^ lockContended; owner != uint32(c.Process.Pid) {
		t.Fatalf("lock owner %d, want the child %d", owner, c.Process.Pid)
	}
	return c.Process
}

// stoppingChild is a child that prints "stopped" when it has stopped where
// the test wants it, and waits to be killed.
type stoppingChild struct {
	*exec.Cmd
	out    *bufio.Reader
	stderr syncBuffer
}

// startStopping starts child mode mode; it is killed and reaped at cleanup.
func startStopping(t *testing.T, mode string, files []*os.File, args ...string) *stoppingChild {
	t.Helper()
	c := &stoppingChild{Cmd: childCommand(mode, files, args...)}
	c.Stderr = &c.stderr
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	c.out = bufio.NewReader(out)
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c
}

// awaitStopped waits for the child's "stopped" line.
func awaitStopped(t *testing.T, c *stoppingChild) {
	t.Helper()
	if line, err := c.out.ReadString('\n'); line != "stopped\n" {
		t.Fatalf("child: %q %v\n%s", line, err, c.stderr.String())
	}
}

// TestQueueCrashRecover kills a process stopped at each point of the
// critical sections and checks what Recover makes of the queue.
func TestQueueCrashRecover(t *testing.T) {
	for _, tc := range []struct {
		point string
		want  []string // bodies queued after recovery
	}{
		{"lock", []string{"m0", "m1", "m2"}},
		{"written", []string{"m0", "m1", "m2"}},            // never committed: never sent
		{"committed", []string{"m0", "m1", "m2", "crash"}}, // committed: sent, counts repaired
		{"taken", []string{"m1", "m2"}},                    // taken: received, head repaired
	} {
		for _, reap := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/reaped=%v", tc.point, reap), func(t *testing.T) {
				q := newTestQueue(t, QueueConfig{Capacity: 8, PerSender: true})
				for i := range 3 {
					mustSend(t, q, msg(int32(i), 0, "", "m"+strconv.Itoa(i)))
				}
				p := stopChildAt(t, q, tc.point)
				q.Recover(p.Pid) // alive: must not steal the lock
				if owner := q.h.lock.Load() &^ lockContended; owner != uint32(p.Pid) {
					t.Fatalf("Recover of a live owner released the lock (owner now %d)", owner)
				}
				p.Signal(syscall.SIGKILL)
				if reap {
					// A supervisor reaps the child and calls Recover.
					p.Wait()
					q.Recover(p.Pid)
				} else {
					// Nobody reaps: the zombie still holds the lock, and the
					// next locker must find out by itself (if it never
					// did, this send would hang and go test time out).
					mustSend(t, q, msg(5, 0, "", "after"))
					tc.want = append(tc.want[:len(tc.want):len(tc.want)], "after")
					p.Wait()
				}
				live := checkQueue(t, q)
				var got []string
				for _, m := range live {
					got = append(got, string(m.Body))
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Fatalf("queued after recovery: %v, want %v", got, tc.want)
				}
				// The queue works on: everything drains in order.
				mustSend(t, q, msg(6, 0, "", "later"))
				for _, want := range append(tc.want, "later") {
					if m := mustReceive(t, q, Filter{}); string(m.Body) != want {
						t.Fatalf("drain: got %q, want %q", m.Body, want)
					}
				}
				checkQueue(t, q)
			})
		}
	}
}

func TestOwnerDead(t *testing.T) {
	if ownerDead(uint32(os.Getpid())) {
		t.Fatal("this process is dead?")
	}
	c := childCommand("queue-exit", nil)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pid := uint32(c.Process.Pid)
	// Exited but not reaped: a zombie.
	deadline := time.Now().Add(10 * time.Second)
	for !ownerDead(pid) {
		if time.Now().After(deadline) {
			t.Fatal("zombie child not seen as dead")
		}
		time.Sleep(time.Millisecond)
	}
	c.Wait()
	if !ownerDead(pid) {
		t.Fatal("reaped child not seen as dead")
	}
}

// The hammer test's ledger is a shared region where children record what
// they did, so the parent can account for every message after the kills:
//
//	hammerAttempt(src)  u64: seq+1 of the send src is in (all before completed)
//	hammerReceived      u64: receives recorded so far, by every child
//	hammerGot(src, seq) u32: how many times (src, seq) was received
const (
	hammerChildren = 2
	hammerMax      = 1 << 18 // messages per child at most
	hammerReceived = 8 * hammerChildren
	// hammerProgress is how many receives the children must have recorded
	// before the parent starts killing: enough traffic for the kills to land
	// among sends and receives, however slow the machine is.
	hammerProgress = 100
)

func hammerAttempt(src int) int { return 8 * src }
func hammerGot(src int, seq uint64) int {
	return 64 + 4*(src*hammerMax+int(seq))
}

// hammerBody is the body of message (src, seq): up to 192 KiB, so that
// copies under the lock take long enough for kills to land there. It is a
// slice of a fixed pattern, so making and checking one costs little time
// outside the lock.
func hammerBody(src int32, seq uint64) []byte {
	n := int(seq*7919+uint64(src)*104729) % (192 << 10)
	i := int(seq+uint64(src)) % 256
	return hammerPattern[i : i+n]
}

var hammerPattern = func() []byte {
	b := make([]byte, 256+192<<10)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// childHammer: args src. Sends and receives on the queue (fd 3) as fast as
// it can, recording in the ledger (fd 4), until killed.
func childHammer() {
	q := childQueue(0)
	ledger, err := OpenRegion(childFile(1))
	if err != nil {
		childFatalf("%v", err)
	}
	src, _ := strconv.Atoi(childArgs()[0])
	var out, in Message
	r := rand.New(rand.NewPCG(uint64(src), uint64(os.Getpid())))
	for seq := uint64(0); seq < hammerMax; {
		// Mostly non-blocking, so the lock is hammered; sometimes waiting.
		w := WaitOpts{NonBlocking: true}
		if r.IntN(8) == 0 {
			w = WaitOpts{Timeout: time.Millisecond}
		}
		if r.IntN(2) == 0 {
			out = Message{Type: "h", Src: int32(src), Seq: seq, Body: hammerBody(int32(src), seq)}
			atomic.StoreUint64(ledger.U64(hammerAttempt(src)), seq+1)
			if err := q.Send(&out, w); err == nil {
				seq++
			} else if err != ErrTimeout && err != ErrFull {
				childFatalf("send: %v", err)
			}
			continue
		}
		err := q.Receive(Filter{}, w, &in)
		if err == ErrTimeout || err == ErrEmpty {
			continue
		}
		if err != nil {
			childFatalf("receive: %v", err)
		}
		if string(in.Body) != string(hammerBody(in.Src, in.Seq)) {
			childFatalf("message %d/%d corrupt", in.Src, in.Seq)
		}
		atomic.AddUint32(ledger.U32(hammerGot(int(in.Src), in.Seq)), 1)
		atomic.AddUint64(ledger.U64(hammerReceived), 1)
	}
}

// waitProgress polls until done() holds, failing the test if a child exits
// meanwhile (it cannot make progress any more). There is no deadline: a
// slow machine only makes this take longer, and go test's own timeout
// catches a hang.
func waitProgress(t *testing.T, kids []*testChild, what string, done func() bool) {
	t.Helper()
	for !done() {
		for _, c := range kids {
			select {
			case <-c.done:
				t.Fatalf("child %v exited (%v) before %s\n%s", c.Args[1:], c.err, what, c.out.String())
			default:
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// TestQueueCrashHammer SIGKILLs processes at random moments while they send
// and receive big messages through one queue, then recovers and drains it:
// the queue must be consistent, and every message sent must have been
// received exactly once or still be queued. The one exception is a message
// a killed process had just taken (delivered to it) but not yet recorded
// in the ledger: at most one per killed process.
func TestQueueCrashHammer(t *testing.T) {
	rounds := 8
	if testing.Short() {
		rounds = 2
	}
	var lockedAtKill int
	for round := range rounds {
		q := newTestQueue(t, QueueConfig{Capacity: 16, Bytes: 2 << 20})
		ledger, err := NewRegion("ledger", 64+4*hammerChildren*hammerMax)
		if err != nil {
			t.Fatal(err)
		}
		var kids []*testChild
		for src := range hammerChildren {
			kids = append(kids, startChild(t, "queue-hammer", []*os.File{q.File(), ledger.File}, strconv.Itoa(src)))
		}
		// Let both get going (exec takes a while) and move some traffic,
		// then kill at a random moment. Progress is counted, not timed.
		waitProgress(t, kids, "sending", func() bool {
			for src := range hammerChildren {
				if atomic.LoadUint64(ledger.U64(hammerAttempt(src))) < 10 {
					return false
				}
			}
			return true
		})
		waitProgress(t, kids, fmt.Sprintf("%d receives", hammerProgress), func() bool {
			return atomic.LoadUint64(ledger.U64(hammerReceived)) >= hammerProgress
		})
		before := atomic.LoadUint64(ledger.U64(hammerReceived))
		time.Sleep(time.Duration(20+rand.IntN(60)) * time.Millisecond)
		for i, c := range kids {
			if i == 0 {
				// Aim the first kill at a moment it holds the lock (a
				// copy of up to 192 KiB takes a few µs there).
				pid := uint32(c.Process.Pid)
				for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
					if q.h.lock.Load()&^lockContended == pid {
						break
					}
				}
			}
			c.kill()
			time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
		}
		for _, c := range kids {
			if q.h.lock.Load()&^lockContended == uint32(c.Process.Pid) {
				lockedAtKill++ // it died holding the lock
			}
			q.Recover(c.Process.Pid)
			if s := c.ProcessState; s == nil || s.Success() {
				t.Fatalf("child did not die by the kill: %v\n%s", s, c.out.String())
			}
		}
		live := checkQueue(t, q)
		var m Message
		for range live {
			if err := q.Receive(Filter{}, nb, &m); err != nil {
				t.Fatal(err)
			}
			if string(m.Body) != string(hammerBody(m.Src, m.Seq)) {
				t.Fatalf("drained message %d/%d corrupt", m.Src, m.Seq)
			}
			atomic.AddUint32(ledger.U32(hammerGot(int(m.Src), m.Seq)), 1)
		}
		if err := q.Receive(Filter{}, nb, &m); err != ErrEmpty {
			t.Fatalf("after draining: %v", err)
		}
		missing, total := 0, 0
		for src := range hammerChildren {
			attempted := *ledger.U64(hammerAttempt(src))
			for seq := uint64(0); seq < hammerMax; seq++ {
				n := *ledger.U32(hammerGot(src, seq))
				switch {
				case n > 1:
					t.Fatalf("round %d: message %d/%d received %d times", round, src, seq, n)
				case n == 1 && seq >= attempted:
					t.Fatalf("round %d: message %d/%d received but never sent", round, src, seq)
				case n == 0 && seq+1 < attempted:
					missing++
				}
				total += int(n)
			}
		}
		if missing > hammerChildren {
			t.Fatalf("round %d: %d messages lost (at most %d may be in killed hands)", round, missing, hammerChildren)
		}
		t.Logf("round %d: %d messages delivered, %d drained, %d in killed hands", round, total, len(live), missing)
		ledger.Close()
		// Every receive recorded before the kills is still in the ledger.
		if total < int(before) {
			t.Fatalf("round %d: the ledger counts %d receives, but %d were recorded before the kills", round, total, before)
		}
	}
	t.Logf("a child held the lock at %d of %d kills", lockedAtKill, rounds*hammerChildren)
}
