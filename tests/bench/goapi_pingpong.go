package main

// Round trip of a 64-byte message through the ipc package, the Go side of
// lua/pingpong.lua:
//
//	pingpong link|mailbox|pipe|unix|mq|sem N
//
// The case process creates the objects and starts ping and pong; ping
// measures (warm-up round trips first) and reports.
//
//	link:    one inbox per process, an ipc.Queue with per-sender capacity
//	         (unbounded links), as the runtime creates them; each side sends
//	         to the other's inbox and receives from its own.
//	mailbox: two ipc.Queues (unbounded), one per direction.
//	pipe:    two pipes, blocking read(2)/write(2) on the inherited *os.File,
//	         as the runtime's pipes do.
//	unix:    ipc.Listen("unix") in the case process; pong accepts through the
//	         inherited listener, ping connects with ipc.Dial; ipc.Stream.
//	mq:      two ipc.Mqueues (capacity 10, msgsize 64), unlinked at once.
//	sem:     the 64 bytes in an ipc.Shm, two ipc.Semaphores handing the turn.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ipcscript/ipcscript/ipc"
)

func init() {
	registerGoCase("pingpong", pingpongGo)
	registerGoRole("ping", func(args []string) error { return pingpongSide(0, args) })
	registerGoRole("pong", func(args []string) error { return pingpongSide(1, args) })
}

const pingpongUsage = "usage: pingpong link|mailbox|pipe|unix|mq|sem N"

func pingpongGo(args []string) (fig figures, err error) {
	if len(args) != 2 {
		return nil, errors.New(pingpongUsage)
	}
	mode := args[0]
	if _, err := positive(args, 1, "N"); err != nil {
		return nil, err
	}
	var cl closer
	defer cl.closeAll()
	// files[0] is what ping inherits, files[1] what pong does; extra are
	// arguments both get after mode and N.
	var files [2][]*os.File
	var extra []string
	both := func(f *os.File) { files[0], files[1] = append(files[0], f), append(files[1], f) }
	switch mode {
	case "link":
		for _, owner := range []string{"ping", "pong"} {
			q, err := ipc.NewQueue(inboxConfig(owner, 2))
			if err != nil {
				return nil, err
			}
			cl.add(func() { q.Close() })
			both(q.File())
		}
	case "mailbox":
		for _, name := range []string{"to_pong", "to_ping"} {
			q, err := ipc.NewQueue(ipc.QueueConfig{Name: fmt.Sprintf("mailbox %q", name), Capacity: ipc.Unbounded})
			if err != nil {
				return nil, err
			}
			cl.add(func() { q.Close() })
			both(q.File())
		}
	case "pipe":
		// Each side gets its write end, then its read end.
		toPongR, toPongW, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		toPingR, toPingW, err := os.Pipe()
		if err != nil {
			toPongR.Close()
			toPongW.Close()
			return nil, err
		}
		for _, f := range []*os.File{toPongR, toPongW, toPingR, toPingW} {
			cl.add(func() { f.Close() })
		}
		files[0] = []*os.File{toPongW, toPingR}
		files[1] = []*os.File{toPingW, toPongR}
	case "unix":
		path, err := filepath.Abs(fmt.Sprintf("pingpong-%d.sock", os.Getpid()))
		if err != nil {
			return nil, err
		}
		l, err := ipc.Listen("unix", path)
		if err != nil {
			return nil, err
		}
		cl.add(func() { l.Close() }) // removes the path
		files[1] = []*os.File{l.File()}
		extra = []string{l.Address()}
	case "mq":
		for _, name := range []string{"to_pong", "to_ping"} {
			q, err := ipc.NewMqueue(name, fmt.Sprintf("/ipcscript-bench-%d-%s", os.Getpid(), name), 10, bodySize)
			if err != nil {
				return nil, err
			}
			cl.add(func() { q.Close() })
			// The descriptors carry it to the workers: no name to leave behind.
			if err := q.Unlink(); err != nil {
				return nil, err
			}
			both(q.File())
		}
	case "sem":
		mem, err := ipc.NewShm("message", bodySize)
		if err != nil {
			return nil, err
		}
		cl.add(func() { mem.Close() })
		both(mem.File())
		for _, name := range []string{"to_pong", "to_ping"} {
			s, err := ipc.NewSemaphore(name, 0)
			if err != nil {
				return nil, err
			}
			cl.add(func() { s.Close() })
			both(s.File())
		}
	default:
		return nil, errors.New(pingpongUsage)
	}

	rp, err := newReport()
	if err != nil {
		return nil, err
	}
	wargs := append([]string{mode, args[1]}, extra...)
	var c crew
	if err := c.start("pong", wargs, files[1]...); err != nil {
		return nil, err
	}
	if err := c.start("ping", wargs, append(files[0], rp.w)...); err != nil {
		c.stop()
		return nil, err
	}
	rp.started()
	if err := c.wait(); err != nil {
		return nil, err
	}
	return rp.read()
}

// rtt is one side's half of a round trip: send a message, receive one.
type rtt struct {
	send func(b []byte) error
	recv func() ([]byte, error) // the slice is valid until the next recv
}

// pingpongSide runs ping (side 0) or pong (side 1).
func pingpongSide(side int, args []string) error {
	if len(args) < 2 {
		return errors.New(pingpongUsage)
	}
	mode := args[0]
	n, err := positive(args, 1, "N")
	if err != nil {
		return err
	}
	warm := max(10, n/10)
	var ch rtt
	switch mode {
	case "link":
		ch, err = linkSide(side)
	case "mailbox":
		ch, err = mailboxSide(side)
	case "pipe":
		ch, err = pipeSide(side)
	case "unix":
		if len(args) < 3 {
			return fmt.Errorf("unix: no socket path")
		}
		ch, err = unixSide(side, args[2])
	case "mq":
		ch, err = mqSide(side)
	case "sem":
		ch, err = semSide(side)
	default:
		return errors.New(pingpongUsage)
	}
	if err != nil {
		return err
	}
	if side == 1 {
		for range warm + n {
			m, err := ch.recv()
			if err != nil {
				return err
			}
			if err := ch.send(m); err != nil {
				return err
			}
		}
		return nil
	}
	body := bytes.Repeat([]byte("x"), bodySize)
	var back []byte
	loop := func(k int) error {
		for range k {
			if err := ch.send(body); err != nil {
				return err
			}
			if back, err = ch.recv(); err != nil {
				return err
			}
		}
		return nil
	}
	if err := loop(warm); err != nil {
		return err
	}
	t0 := time.Now()
	if err := loop(n); err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	ok := bytes.Equal(back, body)
	// The report is the descriptor after this side's objects.
	return sendReport(inherited(reportFd[mode], "report"), figures{
		"ns_per_op": secs * 1e9 / float64(n), "ops": n, "secs": secs, "ok": ok,
	})
}

// reportFd is the index of ping's report descriptor, after its objects.
var reportFd = map[string]int{"link": 2, "mailbox": 2, "pipe": 2, "unix": 0, "mq": 2, "sem": 3}

// linkSide: fd 0 is ping's inbox, fd 1 pong's; side i is sender index i.
func linkSide(side int) (rtt, error) {
	var qs [2]*ipc.Queue
	for i, owner := range []string{"ping", "pong"} {
		q, err := ipc.OpenQueue(inherited(i, owner), ipc.QueueConfig{Name: fmt.Sprintf("inbox of %q", owner)})
		if err != nil {
			return rtt{}, err
		}
		qs[i] = q
	}
	own, peer := qs[side], qs[1-side]
	out := ipc.Message{Src: int32(side), Dst: int32(1 - side)}
	var in ipc.Message
	return rtt{
		send: func(b []byte) error {
			out.Seq++
			out.Body = b
			return peer.Send(&out, forever)
		},
		recv: func() ([]byte, error) {
			err := own.Receive(ipc.Filter{}, forever, &in)
			return in.Body, err
		},
	}, nil
}

// mailboxSide: fd 0 is to_pong, fd 1 to_ping.
func mailboxSide(side int) (rtt, error) {
	var qs [2]*ipc.Queue
	for i, name := range []string{"to_pong", "to_ping"} {
		q, err := ipc.OpenQueue(inherited(i, name), ipc.QueueConfig{Name: fmt.Sprintf("mailbox %q", name)})
		if err != nil {
			return rtt{}, err
		}
		qs[i] = q
	}
	to, from := qs[side], qs[1-side] // ping sends to_pong, receives to_ping
	out := ipc.Message{Src: int32(side)}
	var in ipc.Message
	return rtt{
		send: func(b []byte) error {
			out.Seq++
			out.Body = b
			return to.Send(&out, forever)
		},
		recv: func() ([]byte, error) {
			err := from.Receive(ipc.Filter{}, forever, &in)
			return in.Body, err
		},
	}, nil
}

// pipeSide: fd 0 is this side's write end, fd 1 its read end, both blocking.
func pipeSide(int) (rtt, error) {
	w, r := inherited(0, "pipe-w"), inherited(1, "pipe-r")
	buf := make([]byte, bodySize)
	return rtt{
		send: func(b []byte) error { _, err := w.Write(b); return err },
		recv: func() ([]byte, error) { _, err := io.ReadFull(r, buf); return buf, err },
	}, nil
}

// unixSide: pong accepts on the listener at fd 0, ping connects to path.
func unixSide(side int, path string) (rtt, error) {
	var s *ipc.Stream
	if side == 0 {
		var err error
		if s, err = ipc.Dial("unix", path, ipc.WaitOpts{Timeout: 10 * time.Second}); err != nil {
			return rtt{}, err
		}
	} else {
		l, err := ipc.OpenListener(inherited(0, "listener"), "unix")
		if err != nil {
			return rtt{}, err
		}
		if s, err = l.Accept(ipc.WaitOpts{Timeout: 10 * time.Second}); err != nil {
			return rtt{}, err
		}
		l.Close()
	}
	return rtt{
		send: func(b []byte) error { _, err := s.Write(b, forever); return err },
		recv: func() ([]byte, error) {
			b, err := s.Read(bodySize, forever)
			if err == nil && len(b) < bodySize {
				err = io.ErrUnexpectedEOF
			}
			return b, err
		},
	}, nil
}

// mqSide: fd 0 is to_pong, fd 1 to_ping.
func mqSide(side int) (rtt, error) {
	var qs [2]*ipc.Mqueue
	for i, name := range []string{"to_pong", "to_ping"} {
		q, err := ipc.OpenMqueue(inherited(i, name), name, "")
		if err != nil {
			return rtt{}, err
		}
		qs[i] = q
	}
	to, from := qs[side], qs[1-side]
	return rtt{
		send: func(b []byte) error { return to.Send(b, 0, forever) },
		recv: func() ([]byte, error) { b, _, err := from.Receive(forever); return b, err },
	}, nil
}

// semSide: fd 0 is the shm, fd 1 the to_pong semaphore, fd 2 to_ping.
func semSide(side int) (rtt, error) {
	mem, err := ipc.OpenShm(inherited(0, "message"), "message")
	if err != nil {
		return rtt{}, err
	}
	var sems [2]*ipc.Semaphore
	for i, name := range []string{"to_pong", "to_ping"} {
		if sems[i], err = ipc.OpenSemaphore(inherited(1+i, name), name); err != nil {
			return rtt{}, err
		}
	}
	post, wait := sems[side], sems[1-side] // ping posts to_pong, waits on to_ping
	return rtt{
		send: func(b []byte) error {
			if err := mem.Write(0, b); err != nil {
				return err
			}
			return post.Post(1)
		},
		recv: func() ([]byte, error) {
			if err := wait.Wait(forever); err != nil {
				return nil, err
			}
			return mem.Read(0, bodySize)
		},
	}, nil
}
