package ipc

import (
	"encoding/binary"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Selector waits on queues (their futex words) and descriptors (POLLIN) at
// once, without polling in a loop. A select is:
//
//  1. Begin: every queue counts this selector as a waiting receiver, so
//     senders wake it;
//  2. Snapshot: read every queue's word, then try the objects without
//     blocking (PollFds says which descriptors are ready);
//  3. Wait: sleep until a word changes or a descriptor is ready: futex_waitv
//     on the words when there are only queues, poll(2) when there are only
//     descriptors, and for a mix both: a helper goroutine polls the
//     descriptors and bumps a private futex word that is one of the words
//     slept on (an eventfd cancels it);
//  4. again from 2 (a word that changed may mean a message another receiver
//     took first); End on every way out.
//
// The zero value is ready; a Selector is reused from one select to the
// next (Reset) and is not safe for concurrent use.
type Selector struct {
	queues []*Queue
	words  []*uint32
	vals   []uint32
	pfds   []unix.PollFd
	added  int     // queues registered as waiters by Begin
	word   *uint32 // the fd watcher's futex word
	watch  *fdWatcher
}

// MaxSelectQueues is futex_waitv's limit (128) less the watcher's word.
const MaxSelectQueues = 127

// Reset empties the selector for a new select.
func (s *Selector) Reset() {
	s.queues, s.words, s.vals, s.pfds = s.queues[:0], s.words[:0], s.vals[:0], s.pfds[:0]
}

// AddQueue adds a queue to wait on.
func (s *Selector) AddQueue(q *Queue) {
	s.queues = append(s.queues, q)
	s.words = append(s.words, q.Word())
	s.vals = append(s.vals, 0)
}

// AddFd adds a descriptor to wait on for POLLIN and returns its index for
// FdReady.
func (s *Selector) AddFd(fd int) int {
	s.pfds = append(s.pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	return len(s.pfds) - 1
}

// Queues and Fds say how many of each were added.
func (s *Selector) Queues() int { return len(s.queues) }
func (s *Selector) Fds() int    { return len(s.pfds) }

// Begin registers the selector as a waiting receiver on every queue.
func (s *Selector) Begin() {
	for _, q := range s.queues {
		q.AddWaiter()
	}
	s.added = len(s.queues)
}

// End undoes Begin and stops the descriptor watcher, if any. Call it on
// every way out of a select.
func (s *Selector) End() {
	for _, q := range s.queues[:s.added] {
		q.DoneWaiter()
	}
	s.added = 0
	if s.watch != nil {
		s.watch.stop()
		s.watch = nil
	}
}

// Snapshot reads every queue's word: a change after this wakes Wait.
func (s *Selector) Snapshot() {
	for i, q := range s.queues {
		s.vals[i] = atomic.LoadUint32(q.Word())
	}
}

// PollFds looks (without waiting) which descriptors are ready.
func (s *Selector) PollFds() error {
	if len(s.pfds) == 0 {
		return nil
	}
	_, err := Poll(s.pfds, 0)
	return err
}

// FdReady reports whether descriptor i had events at the last PollFds.
func (s *Selector) FdReady(i int) bool { return s.pfds[i].Revents != 0 }

// Wait sleeps until a queue's word changes from its snapshot, a descriptor
// is ready or the deadline passes (ErrTimeout; zero deadline: none).
// Wakeups may be spurious.
func (s *Selector) Wait(deadline time.Time) error {
	switch {
	case len(s.pfds) == 0:
		return FutexWaitAny(s.words, s.vals, deadline)
	case len(s.queues) == 0:
		_, err := PollUntil(s.pfds, deadline)
		return err
	}
	if s.word == nil {
		s.word = new(uint32)
	}
	seen := atomic.LoadUint32(s.word)
	if s.watch == nil {
		w, err := startFdWatcher(s.pfds, s.word)
		if err != nil {
			return err
		}
		s.watch = w
	} else if s.watch.fired.Swap(false) {
		s.watch.rearm <- struct{}{}
	}
	words := append(s.words, s.word)
	vals := append(s.vals, seen)
	return FutexWaitAny(words, vals, deadline)
}

// fdWatcher polls a mixed select's descriptors on a helper goroutine and
// turns readiness into a change of a futex word the select sleeps on with
// its queues' words. After firing it waits to be re-armed, so a descriptor
// that stays ready does not make it spin; an eventfd cancels its poll.
type fdWatcher struct {
	efd   int
	fired atomic.Bool
	rearm chan struct{}
	done  chan struct{}
}

func startFdWatcher(pfds []unix.PollFd, word *uint32) (*fdWatcher, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	w := &fdWatcher{efd: efd, rearm: make(chan struct{}, 1), done: make(chan struct{})}
	fds := append(append(make([]unix.PollFd, 0, len(pfds)+1), pfds...), unix.PollFd{Fd: int32(efd), Events: unix.POLLIN})
	go w.loop(fds, word)
	return w, nil
}

func (w *fdWatcher) loop(fds []unix.PollFd, word *uint32) {
	defer close(w.done)
	cancel := &fds[len(fds)-1]
	for {
		_, err := Poll(fds, -1)
		if cancel.Revents != 0 {
			return
		}
		w.fired.Store(true)
		atomic.AddUint32(word, 1)
		FutexWake(word, 1)
		if err != nil {
			return // the select's own poll reports the error
		}
		if _, ok := <-w.rearm; !ok {
			return
		}
	}
}

// stop cancels the watcher and waits for its goroutine to end.
func (w *fdWatcher) stop() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(w.efd, one[:])
	close(w.rearm)
	<-w.done
	unix.Close(w.efd)
}
