package main

// Operations on shared memory from WORKERS processes at once, the Go side of
// lua/shmops.lua:
//
//	shmops add|mutex WORKERS N
//
// add: ipc.Shm.Add(I64, 0, 1), an atomic add on one shared 64-bit counter.
// mutex: an ipc.Mutex Lock / Unlock pair. N operations in all, N/WORKERS per
// worker. The case process is the coordinator: the workers say they are
// ready on a control queue, it releases them all at once (one semaphore
// post) and times until every worker has said on the control queue that it
// is done.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ipcscript/ipcscript/ipc"
)

func init() {
	registerGoCase("shmops", shmopsGo)
	registerGoRole("shmops-worker", shmopsWorker)
}

const shmopsUsage = "usage: shmops add|mutex WORKERS N"

// Descriptors of every shmops worker.
const (
	shmopsCounter = iota
	shmopsMutex
	shmopsCtl
	shmopsStart
)

func shmopsGo(args []string) (figures, error) {
	if len(args) != 3 || (args[0] != "add" && args[0] != "mutex") {
		return nil, errors.New(shmopsUsage)
	}
	workers, err := positive(args, 1, "WORKERS")
	if err != nil {
		return nil, err
	}
	n, err := positive(args, 2, "N")
	if err != nil {
		return nil, err
	}
	per := n / workers
	n = per * workers

	var cl closer
	defer cl.closeAll()
	mem, err := ipc.NewShm("counter", 8)
	if err != nil {
		return nil, err
	}
	cl.add(func() { mem.Close() })
	mu, err := ipc.NewMutex("mu")
	if err != nil {
		return nil, err
	}
	cl.add(func() { mu.Close() })
	ctl, err := ipc.NewQueue(inboxConfig("coord", workers))
	if err != nil {
		return nil, err
	}
	cl.add(func() { ctl.Close() })
	start, err := ipc.NewSemaphore("go", 0)
	if err != nil {
		return nil, err
	}
	cl.add(func() { start.Close() })
	files := []*os.File{shmopsCounter: mem.File(), shmopsMutex: mu.File(), shmopsCtl: ctl.File(), shmopsStart: start.File()}

	c := crew{abort: func() { ctl.Shutdown() }}
	for i := range workers {
		if err := c.start("shmops-worker", []string{args[0], strconv.Itoa(i), strconv.Itoa(per)}, files...); err != nil {
			c.stop()
			return nil, err
		}
	}
	c.watch()
	var m ipc.Message
	for range workers {
		if err := ctl.Receive(ipc.Filter{Type: "ready", ByType: true}, forever, &m); err != nil {
			return nil, tputFailed(&c, err)
		}
	}
	t0 := time.Now()
	if err := start.Post(workers); err != nil {
		c.stop()
		return nil, err
	}
	for range workers {
		if err := ctl.Receive(ipc.Filter{Type: "done", ByType: true}, forever, &m); err != nil {
			return nil, tputFailed(&c, err)
		}
	}
	secs := time.Since(t0).Seconds()
	if err := c.wait(); err != nil {
		return nil, err
	}
	ok := true
	if args[0] == "add" {
		v, err := mem.Get(ipc.I64, 0)
		if err != nil {
			return nil, err
		}
		got, _ := v.Int64()
		ok = got == int64(n)
	}
	return figures{"ops_per_s": float64(n) / secs, "ops": n, "secs": secs, "ok": ok}, nil
}

// shmopsWorker: args are the mode, its index and its number of operations.
func shmopsWorker(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("shmops worker: want MODE INDEX COUNT")
	}
	self, _ := strconv.Atoi(args[1])
	per, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	mem, err := ipc.OpenShm(inherited(shmopsCounter, "counter"), "counter")
	if err != nil {
		return err
	}
	mu, err := ipc.OpenMutex(inherited(shmopsMutex, "mu"), "mu")
	if err != nil {
		return err
	}
	ctl, err := ipc.OpenQueue(inherited(shmopsCtl, "coord"), ipc.QueueConfig{Name: `inbox of "coord"`})
	if err != nil {
		return err
	}
	start, err := ipc.OpenSemaphore(inherited(shmopsStart, "go"), "go")
	if err != nil {
		return err
	}
	if err := ctl.Send(&ipc.Message{Type: "ready", Src: int32(self)}, forever); err != nil {
		return err
	}
	if err := start.Wait(forever); err != nil {
		return err
	}
	if args[0] == "add" {
		one := ipc.IntNumber(1)
		for range per {
			if _, err := mem.Add(ipc.I64, 0, one); err != nil {
				return err
			}
		}
	} else {
		for range per {
			if _, err := mu.Lock(forever); err != nil {
				return err
			}
			if err := mu.Unlock(); err != nil {
				return err
			}
		}
	}
	return ctl.Send(&ipc.Message{Type: "done", Src: int32(self)}, forever)
}
