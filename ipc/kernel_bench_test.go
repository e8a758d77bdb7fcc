package ipc

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Benchmarks of the kernel objects. The round trips run between two real
// processes: the test binary and a child of it.

func init() {
	registerChild("kern-pipe-writer", kernChildPipeWriter)
}

// BenchmarkSemaphorePingPong: post ping, wait pong, the child doing the
// reverse; one op is a full round trip (two wakeups across processes).
func BenchmarkSemaphorePingPong(b *testing.B) {
	ping := newTestSemaphore(b, "ping", 0)
	pong := newTestSemaphore(b, "pong", 0)
	c := startChild(b, "kern-sem-pong", []*os.File{ping.File(), pong.File()}, strconv.Itoa(b.N))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ping.Post(1)
		if err := pong.Wait(WaitOpts{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c.wait(b)
}

func BenchmarkMutexUncontended(b *testing.B) {
	mu := newTestMutex(b, "m")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mu.Lock(WaitOpts{})
		mu.Unlock()
	}
}

func BenchmarkShmAtomicAdd(b *testing.B) {
	for _, t := range []NumType{I64, U8} {
		b.Run(t.String(), func(b *testing.B) {
			m := newTestShm(b, "counters", 64)
			one := IntNumber(1)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.Add(t, 8, one)
			}
		})
	}
}

// BenchmarkMqueueRoundTrip: a 64-byte message to an echoing child and back
// through two POSIX message queues.
func BenchmarkMqueueRoundTrip(b *testing.B) {
	rd := newTestRunDir(b)
	req := newTestMqueue(b, rd, "req", 10, 256)
	resp := newTestMqueue(b, rd, "resp", 10, 256)
	c := startChild(b, "kern-mq-echo", []*os.File{req.File(), resp.File()}, strconv.Itoa(b.N))
	msg := make([]byte, 64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := req.Send(msg, 0, WaitOpts{}); err != nil {
			b.Fatal(err)
		}
		if _, _, err := resp.Receive(WaitOpts{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c.wait(b)
}

// BenchmarkStreamPipeBulk: a child writes 64 KiB chunks into a pipe as fast
// as it can; the benchmark reads them with Stream.Read(64 KiB), which
// returns a new slice each time (what a binding turns into a Lua string),
// and with ReadSome into one reused buffer.
func BenchmarkStreamPipeBulk(b *testing.B) {
	const chunk = 64 << 10
	for _, mode := range []string{"Read", "ReadSome"} {
		b.Run(mode, func(b *testing.B) {
			rf, wf, err := NewPipe()
			if err != nil {
				b.Fatal(err)
			}
			c := startChild(b, "kern-pipe-writer", []*os.File{wf}, strconv.Itoa(b.N), strconv.Itoa(chunk))
			wf.Close()
			r, err := NewStream("pipe", "bulk", rf)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if mode == "Read" {
					if p, err := r.Read(chunk, WaitOpts{}); err != nil || len(p) != chunk {
						b.Fatalf("read %d: %d bytes, %v", i, len(p), err)
					}
					continue
				}
				for k := 0; k < chunk; {
					n, err := r.ReadSome(buf[k:], WaitOpts{})
					if err != nil {
						b.Fatal(err)
					}
					k += n
				}
			}
			b.StopTimer()
			c.wait(b)
		})
	}
}

func kernChildPipeWriter() {
	n, _ := strconv.Atoi(childArgs()[0])
	size, _ := strconv.Atoi(childArgs()[1])
	w, err := NewStream("pipe", "bulk", childFile(0))
	if err != nil {
		childFatalf("%v", err)
	}
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		if _, err := w.Write(buf, WaitOpts{Timeout: time.Minute}); err != nil {
			childFatalf("%v", err)
		}
	}
	w.Close()
}
