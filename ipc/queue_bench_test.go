package ipc

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Benchmarks between two real processes (and, for comparison, between two
// goroutines), with 64-byte messages:
//
//	RoundTrip: a request and its echo; ns/op is one round trip.
//	OneWay:    a stream of messages to a consumer; ns/op is per message.
//	PipeRoundTrip: the same round trip over two pipes with blocking
//	           read/write system calls, as a C program would do it.

const benchBody = 64

func init() {
	registerChild("queue-echo", childEcho)
	registerChild("queue-sink", childSink)
	registerChild("queue-pipe-echo", childPipeEcho)
}

// flagAck marks the last message of a one-way run: the sink acknowledges it.
const flagAck = 1

// childEcho sends every message from fd 3 back on fd 4 until fd 3 closes.
func childEcho() { echo(childQueue(0), childQueue(1)) }

func echo(in, out *Queue) {
	var m Message
	for {
		if err := in.Receive(Filter{}, WaitOpts{}, &m); err != nil {
			if err == ErrClosed {
				return
			}
			childFatalf("receive: %v", err)
		}
		if err := out.Send(&m, WaitOpts{}); err != nil {
			childFatalf("send: %v", err)
		}
	}
}

// childSink receives from fd 3 until it closes, acknowledging each message
// flagged flagAck on fd 4.
func childSink() { sink(childQueue(0), childQueue(1)) }

func sink(in, out *Queue) {
	var m Message
	for {
		if err := in.Receive(Filter{}, WaitOpts{}, &m); err != nil {
			if err == ErrClosed {
				return
			}
			childFatalf("receive: %v", err)
		}
		if m.Flags == flagAck {
			if err := out.Send(&Message{}, WaitOpts{}); err != nil {
				childFatalf("send: %v", err)
			}
		}
	}
}

// peer runs fn (echo or sink) in a child process or a goroutine, on two
// queues. stop closes the request queue and waits for the peer to end.
func peer(b *testing.B, process bool, mode string, fn func(in, out *Queue), req, rep *Queue) (stop func()) {
	if process {
		c := startChild(b, mode, []*os.File{req.File(), rep.File()})
		return func() { req.Shutdown(); c.wait(b) }
	}
	in, out := openView(b, req), openView(b, rep)
	done := make(chan struct{})
	go func() { fn(in, out); close(done) }()
	return func() { req.Shutdown(); <-done }
}

func BenchmarkQueueRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name    string
		process bool
	}{{"process", true}, {"goroutine", false}} {
		b.Run(bc.name, func(b *testing.B) {
			req := newTestQueue(b, QueueConfig{Capacity: Unbounded, Bytes: 1 << 20})
			rep := newTestQueue(b, QueueConfig{Capacity: Unbounded, Bytes: 1 << 20})
			stop := peer(b, bc.process, "queue-echo", echo, req, rep)
			m := &Message{Type: "ping", Time: 1, Body: make([]byte, benchBody)}
			r := Message{Body: make([]byte, 0, benchBody)}
			trip := func() {
				if err := req.Send(m, WaitOpts{}); err != nil {
					b.Fatal(err)
				}
				if err := rep.Receive(Filter{}, WaitOpts{}, &r); err != nil {
					b.Fatal(err)
				}
			}
			for range 1000 { // warm up: the peer has started and runs
				trip()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				trip()
			}
			b.StopTimer()
			stop()
		})
	}
}

func BenchmarkQueueOneWay(b *testing.B) {
	for _, bc := range []struct {
		name     string
		process  bool
		capacity int
	}{
		{"process/cap64", true, 64},
		{"process/unbounded", true, Unbounded},
		{"goroutine/cap64", false, 64},
		{"goroutine/unbounded", false, Unbounded},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := newTestQueue(b, QueueConfig{Capacity: bc.capacity})
			rep := newTestQueue(b, QueueConfig{Capacity: Unbounded, Bytes: 4096})
			stop := peer(b, bc.process, "queue-sink", sink, req, rep)
			m := &Message{Type: "data", Time: 1, Body: make([]byte, benchBody)}
			ack := &Message{Type: "data", Time: 1, Flags: flagAck}
			var r Message
			round := func(n int) {
				for range n {
					if err := req.Send(m, WaitOpts{}); err != nil {
						b.Fatal(err)
					}
				}
				if err := req.Send(ack, WaitOpts{}); err != nil {
					b.Fatal(err)
				}
				if err := rep.Receive(Filter{}, WaitOpts{}, &r); err != nil {
					b.Fatal(err)
				}
			}
			round(1000) // warm up
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			round(b.N)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			b.StopTimer()
			stop()
		})
	}
}

// childPipeEcho echoes benchBody-byte messages from fd 3 to fd 4 with
// blocking system calls until EOF.
func childPipeEcho() {
	buf := make([]byte, benchBody)
	for {
		n, err := unix.Read(3, buf)
		if n <= 0 || err != nil {
			return
		}
		if _, err := unix.Write(4, buf[:n]); err != nil {
			childFatalf("write: %v", err)
		}
	}
}

// BenchmarkPipeRoundTrip is the yardstick for BenchmarkQueueRoundTrip: a
// pipe ping-pong between two processes (blocking read/write, no poller).
func BenchmarkPipeRoundTrip(b *testing.B) {
	var req, rep [2]int
	if err := unix.Pipe2(req[:], unix.O_CLOEXEC); err != nil {
		b.Fatal(err)
	}
	if err := unix.Pipe2(rep[:], unix.O_CLOEXEC); err != nil {
		b.Fatal(err)
	}
	reqR, repW := os.NewFile(uintptr(req[0]), "req"), os.NewFile(uintptr(rep[1]), "rep")
	c := startChild(b, "queue-pipe-echo", []*os.File{reqR, repW})
	reqR.Close()
	repW.Close()
	defer unix.Close(rep[0])
	buf := make([]byte, benchBody)
	trip := func() {
		if _, err := unix.Write(req[1], buf); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < benchBody; {
			n, err := unix.Read(rep[0], buf[got:])
			if err != nil || n == 0 {
				b.Fatalf("read: %d %v", n, err)
			}
			got += n
		}
	}
	for range 1000 {
		trip()
	}
	b.ResetTimer()
	for range b.N {
		trip()
	}
	b.StopTimer()
	unix.Close(req[1])
	c.wait(b)
}
