package ipc

import (
	"bytes"
	"math"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The queue lock is a futex word holding the owner's pid, with
// lockContended set when someone may sleep on it (so unlock knows whether
// to FUTEX_WAKE). Goroutines of one process share a pid; that is fine for
// mutual exclusion (the CAS decides) and the pid is only read to find out
// whether the owner died.
const lockContended = 1 << 31

const (
	// lockSpins is how many times a locker re-reads a held lock before it
	// sleeps: critical sections are a few hundred ns.
	lockSpins = 200
	// lockSpinFor is how long a locker spins, beyond the first lockSpins
	// reads, before it sleeps (only when it may run on more than one CPU:
	// otherwise the holder cannot run while it spins).
	lockSpinFor = 5 * time.Microsecond
	// lockCheck is how often a sleeping locker wakes to check whether the
	// owner died.
	lockCheck = 50 * time.Millisecond
)

func (q *Queue) lockWord() *uint32 { return (*uint32)(unsafe.Pointer(&q.h.lock)) }

func (q *Queue) lock() {
	if !q.h.lock.CompareAndSwap(0, q.pid) {
		q.lockSlow()
	}
}

func (q *Queue) lockSlow() {
	if spinning {
		var end time.Time
		for i := 1; ; i++ {
			if q.h.lock.Load() == 0 && q.h.lock.CompareAndSwap(0, q.pid) {
				return
			}
			if i%lockSpins == 0 {
				now := time.Now()
				if end.IsZero() {
					end = now.Add(lockSpinFor)
				} else if now.After(end) {
					break
				}
			}
		}
	}
	for {
		v := q.h.lock.Load()
		if v == 0 {
			// Taken with the contended bit: others may still sleep.
			if q.h.lock.CompareAndSwap(0, q.pid|lockContended) {
				return
			}
			continue
		}
		if v&lockContended == 0 {
			if !q.h.lock.CompareAndSwap(v, v|lockContended) {
				continue
			}
			v |= lockContended
		}
		if FutexWait(q.lockWord(), v, time.Now().Add(lockCheck)) == ErrTimeout {
			owner := v &^ lockContended
			if owner != q.pid && ownerDead(owner) && q.h.lock.CompareAndSwap(v, q.pid|lockContended) {
				q.repairLocked()
				return
			}
		}
	}
}

func (q *Queue) unlock() {
	if q.h.lock.Swap(0)&lockContended != 0 {
		FutexWake(q.lockWord(), 1)
	}
}

// ownerDead reports whether process pid is gone. A killed process that is
// not yet reaped (a zombie) still answers kill(pid, 0), so /proc is asked
// too.
func ownerDead(pid uint32) bool {
	if pid == 0 || pid > math.MaxInt32 {
		return false
	}
	if err := unix.Kill(int(pid), 0); err == unix.ESRCH {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
	if err != nil {
		return os.IsNotExist(err)
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'Z' || b[i+2] == 'X'
}

// Recover repairs the queue after process pid died: when pid held the lock,
// the queue's derived state is recomputed from the records and the lock is
// released. It does nothing while pid is alive or when pid did not hold the
// lock. Lockers in other processes also recover by themselves within about
// lockCheck; Recover is for a supervisor that knows pid just died.
func (q *Queue) Recover(pid int) {
	if pid <= 0 || pid > math.MaxInt32 {
		return
	}
	// A wake for room may have gone to pid, which will never pass it on.
	if q.h.roomWoken.Load() != 0 && ownerDead(uint32(pid)) {
		q.h.roomWoken.Store(0)
		q.wakeRoom()
	}
	// So may the wakes that takes skipped while pid spun for room.
	if q.h.roomSpinner.Load() == uint32(pid) && ownerDead(uint32(pid)) && q.h.roomSpinner.CompareAndSwap(uint32(pid), 0) {
		q.wakeRoom()
	}
	// And a wake it deferred (roomDebt): whoever exits may have owed one.
	if q.h.roomSleepers.Load() != 0 && q.roomFree() && ownerDead(uint32(pid)) {
		q.wakeRoomNow()
	}
	for {
		// The lock word first: a supervisor calls Recover on every queue for
		// every exit, and almost always the dead process held none of them.
		v := q.h.lock.Load()
		if v == 0 || v&^lockContended != uint32(pid) || !ownerDead(uint32(pid)) {
			return
		}
		if q.h.lock.CompareAndSwap(v, q.pid|lockContended) {
			q.repairLocked()
			q.unlock()
			return
		}
	}
}

// repairLocked recomputes the derived state (head, count, per-sender counts)
// from the records between head and tail, after a lock owner died at an
// unknown instruction. The committed records are the truth: a record past
// tail was never sent, a record whose state is not recLive was taken.
// Everyone is woken, since a dead sender may have committed without waking
// the receivers.
func (q *Queue) repairLocked() {
	head, tail := q.h.head.Load(), q.h.tail.Load()
	if tail < head || tail-head > q.size {
		// Cannot come from a crash (both are single stores); treat the
		// queue as empty rather than read nonsense.
		head = tail
	}
	perSender := q.h.perSender != 0
	if perSender {
		for i := range q.slots {
			q.slots[i].count.Store(0)
		}
	}
	var count uint32
	live := false
	for p := head; p < tail; {
		off := p % q.size
		n := q.recLen(off)
		if !q.validRecord(p, tail, n) {
			tail = p // unreadable from here on: drop the rest
			q.h.tail.Store(tail)
			break
		}
		if q.state(off).Load() == recLive {
			h, err := DecodeHeader(q.ring[off+recPrefix : off+n])
			if err != nil || HeaderSize+h.Size() > int(n-recPrefix) {
				q.state(off).Store(recWithdrawn) // unreadable: never deliver it
			} else {
				live = true
				count++
				if perSender {
					if s := q.slot(h.Src); s != nil {
						s.count.Add(1)
					}
				}
			}
		}
		if !live {
			head = p + n
		}
		p += n
	}
	q.h.head.Store(head)
	q.h.count.Store(count)
	q.h.word.Add(1)
	q.h.room.Add(1)
	q.h.roomWoken.Store(0)
	FutexWake(q.Word(), math.MaxInt32)
	FutexWake(q.roomWord(), math.MaxInt32)
}

// Hooks let tests stop a process at chosen instructions of the critical
// sections (then SIGKILL it there). testHook is nil outside tests.
type hookPoint int

const (
	hookWritten     hookPoint = iota + 1 // record written past tail, not committed
	hookCommitted                        // tail stored, counts not yet updated
	hookTaken                            // record marked taken, head not yet advanced
	hookRoomWake                         // a take made room, its wakeRoom not yet called
	hookRoomSleep                        // a sender counted asleep for room, not yet in FUTEX_WAIT
	hookHandoff                          // a waitlist hand-off committed (lock word, unit), not yet granted
	hookGrantStored                      // a waitlist slot's grant stored, queued and the wake not yet done
)

// hookStreamHeld: a Stream's held wait (waitHeld, heldRW) counted, not yet
// in its system call.
const hookStreamHeld hookPoint = 200

var testHook func(hookPoint)

func hook(p hookPoint) {
	if testHook != nil {
		testHook(p)
	}
}
