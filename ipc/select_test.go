package ipc

import (
	"os"
	"testing"
	"time"
)

// TestSelectorWakesOnQueueAndFd waits on a queue and a pipe together: a
// message wakes it, bytes in the pipe wake it, and with neither it times
// out.
func TestSelectorWakesOnQueueAndFd(t *testing.T) {
	q := newTestQueue(t, QueueConfig{Capacity: 4})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	var s Selector
	s.AddQueue(q)
	fi := s.AddFd(int(r.Fd()))
	s.Begin()
	defer s.End()

	s.Snapshot()
	if err := s.Wait(time.Now().Add(20 * time.Millisecond)); err != ErrTimeout {
		t.Fatalf("nothing ready: Wait = %v, want ErrTimeout", err)
	}

	s.Snapshot()
	woke := make(chan error, 1)
	go func() { woke <- s.Wait(time.Time{}) }()
	mustSend(t, q, msg(1, 0, "", "x"))
	if err := <-woke; err != nil {
		t.Fatalf("a message: Wait = %v", err)
	}
	var m Message
	if err := q.Receive(Filter{}, WaitOpts{NonBlocking: true}, &m); err != nil || string(m.Body) != "x" {
		t.Fatalf("receive after the wake: %q, %v", m.Body, err)
	}

	s.Snapshot()
	go func() { woke <- s.Wait(time.Time{}) }()
	w.Write([]byte("y"))
	if err := <-woke; err != nil {
		t.Fatalf("bytes in the pipe: Wait = %v", err)
	}
	if err := s.PollFds(); err != nil || !s.FdReady(fi) {
		t.Fatalf("the pipe is not reported ready (%v)", err)
	}
}
