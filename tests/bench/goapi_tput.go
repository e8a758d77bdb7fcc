package main

// One-way throughput of 64-byte messages through one mailbox (an ipc.Queue
// shared by every worker), the Go side of lua/tput.lua:
//
//	tput PRODUCERS CONSUMERS CAPACITY|unbounded N
//
// N messages in all, N/PRODUCERS from each producer, each producer ending
// with one message of type "stop"; a consumer stops at the first it takes.
// The case process is the coordinator: the workers say they are ready on a
// control queue, it releases them all at once (one semaphore post) and
// times until every consumer has said on the control queue how many it took.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ipcscript/ipcscript/ipc"
)

func init() {
	registerGoCase("tput", tputGo)
	registerGoRole("producer", producerGo)
	registerGoRole("consumer", consumerGo)
}

const tputUsage = "usage: tput PRODUCERS CONSUMERS CAPACITY|unbounded N"

// Descriptors of every tput worker: the mailbox, the control queue, the
// start line.
const (
	tputBox = iota
	tputCtl
	tputStart
)

func tputGo(args []string) (figures, error) {
	if len(args) != 4 {
		return nil, errors.New(tputUsage)
	}
	producers, err := positive(args, 0, "PRODUCERS")
	if err != nil {
		return nil, err
	}
	consumers, err := positive(args, 1, "CONSUMERS")
	if err != nil {
		return nil, err
	}
	if producers != consumers && consumers != 1 {
		return nil, errors.New("PRODUCERS must equal CONSUMERS, or CONSUMERS be 1 (a consumer stops after its share of the stop messages)")
	}
	stops := producers / consumers
	capacity := ipc.Unbounded
	if args[2] != "unbounded" {
		if capacity, err = positive(args, 2, "CAPACITY"); err != nil {
			return nil, err
		}
	}
	n, err := positive(args, 3, "N")
	if err != nil {
		return nil, err
	}

	var cl closer
	defer cl.closeAll()
	box, err := ipc.NewQueue(ipc.QueueConfig{Name: `mailbox "box"`, Capacity: capacity})
	if err != nil {
		return nil, err
	}
	cl.add(func() { box.Close() })
	ctl, err := ipc.NewQueue(inboxConfig("coord", producers+consumers))
	if err != nil {
		return nil, err
	}
	cl.add(func() { ctl.Close() })
	start, err := ipc.NewSemaphore("go", 0)
	if err != nil {
		return nil, err
	}
	cl.add(func() { start.Close() })
	files := []*os.File{tputBox: box.File(), tputCtl: ctl.File(), tputStart: start.File()}

	// Worker i is sender i on the control queue and the mailbox.
	c := crew{abort: func() { ctl.Shutdown() }}
	for i := range producers {
		mine := n / producers
		if i < n%producers {
			mine++
		}
		if err := c.start("producer", []string{strconv.Itoa(i), strconv.Itoa(mine)}, files...); err != nil {
			c.stop()
			return nil, err
		}
	}
	for i := range consumers {
		if err := c.start("consumer", []string{strconv.Itoa(producers + i), strconv.Itoa(stops)}, files...); err != nil {
			c.stop()
			return nil, err
		}
	}
	c.watch()

	var m ipc.Message
	for range producers + consumers {
		if err := ctl.Receive(ipc.Filter{Type: "ready", ByType: true}, forever, &m); err != nil {
			return nil, tputFailed(&c, err)
		}
	}
	t0 := time.Now()
	if err := start.Post(producers + consumers); err != nil {
		c.stop()
		return nil, err
	}
	taken := 0
	for range consumers {
		if err := ctl.Receive(ipc.Filter{Type: "done", ByType: true}, forever, &m); err != nil {
			return nil, tputFailed(&c, err)
		}
		taken += int(binary.LittleEndian.Uint64(m.Body))
	}
	secs := time.Since(t0).Seconds()
	if err := c.wait(); err != nil {
		return nil, err
	}
	return figures{"msgs_per_s": float64(n) / secs, "ops": n, "secs": secs, "ok": taken == n}, nil
}

// tputFailed is the error of a coordinator whose wait failed: a worker's
// failure (which closed the control queue) if there is one.
func tputFailed(c *crew, err error) error {
	c.stop()
	if werr := c.wait(); werr != nil {
		return werr
	}
	return err
}

// tputWorker opens a tput worker's objects, says it is ready and waits for
// the start.
func tputWorker(self int) (box, ctl *ipc.Queue, err error) {
	if box, err = ipc.OpenQueue(inherited(tputBox, "box"), ipc.QueueConfig{Name: `mailbox "box"`}); err != nil {
		return nil, nil, err
	}
	if ctl, err = ipc.OpenQueue(inherited(tputCtl, "coord"), ipc.QueueConfig{Name: `inbox of "coord"`}); err != nil {
		return nil, nil, err
	}
	start, err := ipc.OpenSemaphore(inherited(tputStart, "go"), "go")
	if err != nil {
		return nil, nil, err
	}
	if err := ctl.Send(&ipc.Message{Type: "ready", Src: int32(self)}, forever); err != nil {
		return nil, nil, err
	}
	return box, ctl, start.Wait(forever)
}

// producerGo: args are its index and how many messages it sends.
func producerGo(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("producer: want INDEX COUNT")
	}
	self, _ := strconv.Atoi(args[0])
	mine, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	box, _, err := tputWorker(self)
	if err != nil {
		return err
	}
	m := ipc.Message{Src: int32(self), Body: make([]byte, bodySize)}
	for i := range bodySize {
		m.Body[i] = 'x'
	}
	for range mine {
		m.Seq++
		if err := box.Send(&m, forever); err != nil {
			return err
		}
	}
	m.Seq++
	m.Type, m.Body = "stop", nil
	return box.Send(&m, forever)
}

// consumerGo: its args are its index and how many stop messages end it.
func consumerGo(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("consumer: want INDEX STOPS")
	}
	self, _ := strconv.Atoi(args[0])
	stops, _ := strconv.Atoi(args[1])
	box, ctl, err := tputWorker(self)
	if err != nil {
		return err
	}
	var m ipc.Message
	got := 0
	for {
		if err := box.Receive(ipc.Filter{}, forever, &m); err != nil {
			return err
		}
		if m.Type == "stop" {
			if stops--; stops <= 0 {
				break
			}
			continue
		}
		if len(m.Body) != bodySize {
			return fmt.Errorf("consumer: a body of %d bytes, want %d", len(m.Body), bodySize)
		}
		got++
	}
	done := ipc.Message{Type: "done", Src: int32(self), Body: binary.LittleEndian.AppendUint64(nil, uint64(got))}
	return ctl.Send(&done, forever)
}
