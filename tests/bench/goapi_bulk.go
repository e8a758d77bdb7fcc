package main

// Bulk bytes from one process to another in CHUNK-byte writes, the Go side
// of lua/bulk.lua:
//
//	bulk pipe|unix|shm TOTAL_BYTES CHUNK
//
// pipe: one pipe, blocking write(2)/read(2) on the inherited *os.File, as
// the runtime's pipes. unix: ipc.Listen("unix") in the case process, the
// reader accepts through the inherited listener, the writer connects with
// ipc.Dial; ipc.Stream on both sides. shm: a ring of 16 slots of CHUNK bytes
// in an ipc.Shm (Write in, Read out) and two ipc.Semaphores counting the free
// and filled slots. The reader takes the first chunk untimed (so both sides
// are running), then times the rest, and reports.

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
	registerGoCase("bulk", bulkGo)
	registerGoRole("bulk-writer", bulkWriter)
	registerGoRole("bulk-reader", bulkReader)
}

const (
	bulkUsage = "usage: bulk pipe|unix|shm TOTAL_BYTES CHUNK"
	bulkSlots = 16
)

// bulkArgs parses mode, chunk size and chunk count.
func bulkArgs(args []string) (mode string, chunk, chunks int, err error) {
	if len(args) < 3 {
		return "", 0, 0, errors.New(bulkUsage)
	}
	total, err := positive(args, 1, "TOTAL_BYTES")
	if err != nil {
		return "", 0, 0, err
	}
	if chunk, err = positive(args, 2, "CHUNK"); err != nil {
		return "", 0, 0, err
	}
	if chunks = total / chunk; chunks < 2 {
		return "", 0, 0, errors.New("TOTAL_BYTES must hold at least 2 chunks")
	}
	return args[0], chunk, chunks, nil
}

func bulkGo(args []string) (figures, error) {
	mode, chunk, _, err := bulkArgs(args)
	if err != nil {
		return nil, err
	}
	if len(args) != 3 {
		return nil, errors.New(bulkUsage)
	}
	var cl closer
	defer cl.closeAll()
	var wfiles, rfiles []*os.File
	wargs := args
	switch mode {
	case "pipe":
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		cl.add(func() { r.Close(); w.Close() })
		wfiles, rfiles = []*os.File{w}, []*os.File{r}
	case "unix":
		path, err := filepath.Abs(fmt.Sprintf("bulk-%d.sock", os.Getpid()))
		if err != nil {
			return nil, err
		}
		l, err := ipc.Listen("unix", path)
		if err != nil {
			return nil, err
		}
		cl.add(func() { l.Close() }) // removes the path
		rfiles = []*os.File{l.File()}
		wargs = append(args[:3:3], l.Address())
	case "shm":
		mem, err := ipc.NewShm("ring", bulkSlots*chunk)
		if err != nil {
			return nil, err
		}
		cl.add(func() { mem.Close() })
		free, err := ipc.NewSemaphore("free", bulkSlots)
		if err != nil {
			return nil, err
		}
		cl.add(func() { free.Close() })
		used, err := ipc.NewSemaphore("used", 0)
		if err != nil {
			return nil, err
		}
		cl.add(func() { used.Close() })
		wfiles = []*os.File{mem.File(), free.File(), used.File()}
		rfiles = wfiles
	default:
		return nil, errors.New(bulkUsage)
	}

	rp, err := newReport()
	if err != nil {
		return nil, err
	}
	var c crew
	if err := c.start("bulk-writer", wargs, wfiles...); err != nil {
		return nil, err
	}
	if err := c.start("bulk-reader", args, append(rfiles, rp.w)...); err != nil {
		c.stop()
		return nil, err
	}
	rp.started()
	if err := c.wait(); err != nil {
		return nil, err
	}
	return rp.read()
}

// shmRing opens the shm mode's objects: fd 0 the ring, 1 free, 2 used.
func shmRing() (mem *ipc.Shm, free, used *ipc.Semaphore, err error) {
	if mem, err = ipc.OpenShm(inherited(0, "ring"), "ring"); err != nil {
		return
	}
	if free, err = ipc.OpenSemaphore(inherited(1, "free"), "free"); err != nil {
		return
	}
	used, err = ipc.OpenSemaphore(inherited(2, "used"), "used")
	return
}

func bulkWriter(args []string) error {
	mode, chunk, chunks, err := bulkArgs(args)
	if err != nil {
		return err
	}
	data := bytes.Repeat([]byte("x"), chunk)
	switch mode {
	case "pipe":
		w := inherited(0, "pipe-w")
		for range chunks {
			if _, err := w.Write(data); err != nil {
				return err
			}
		}
		return w.Close()
	case "unix":
		if len(args) < 4 {
			return errors.New("unix: no socket path")
		}
		s, err := ipc.Dial("unix", args[3], ipc.WaitOpts{Timeout: 10 * time.Second})
		if err != nil {
			return err
		}
		for range chunks {
			if _, err := s.Write(data, forever); err != nil {
				return err
			}
		}
		return s.Close()
	case "shm":
		mem, free, used, err := shmRing()
		if err != nil {
			return err
		}
		for i := range chunks {
			if err := free.Wait(forever); err != nil {
				return err
			}
			if err := mem.Write(i%bulkSlots*chunk, data); err != nil {
				return err
			}
			if err := used.Post(1); err != nil {
				return err
			}
		}
		return nil
	}
	return errors.New(bulkUsage)
}

func bulkReader(args []string) error {
	mode, chunk, chunks, err := bulkArgs(args)
	if err != nil {
		return err
	}
	// readChunk reads the i-th chunk (0-based) and returns it.
	var readChunk func(i int) ([]byte, error)
	reportAt := 1
	switch mode {
	case "pipe":
		r := inherited(0, "pipe-r")
		buf := make([]byte, chunk)
		readChunk = func(int) ([]byte, error) {
			n, err := io.ReadFull(r, buf)
			return buf[:n], err
		}
	case "unix":
		l, err := ipc.OpenListener(inherited(0, "listener"), "unix")
		if err != nil {
			return err
		}
		s, err := l.Accept(ipc.WaitOpts{Timeout: 10 * time.Second})
		if err != nil {
			return err
		}
		l.Close()
		buf := make([]byte, chunk)
		readChunk = func(int) ([]byte, error) {
			got := 0
			for got < chunk {
				n, err := s.ReadSome(buf[got:], forever)
				got += n
				if err != nil {
					return buf[:got], err
				}
			}
			return buf, nil
		}
	case "shm":
		mem, free, used, err := shmRing()
		if err != nil {
			return err
		}
		reportAt = 3
		readChunk = func(i int) ([]byte, error) {
			if err := used.Wait(forever); err != nil {
				return nil, err
			}
			b, err := mem.Read(i%bulkSlots*chunk, chunk)
			if err != nil {
				return nil, err
			}
			return b, free.Post(1)
		}
	default:
		return errors.New(bulkUsage)
	}
	first, err := readChunk(0)
	if err != nil {
		return err
	}
	ok := len(first) == chunk
	t0 := time.Now()
	got := 0
	for i := 1; i < chunks; i++ {
		b, err := readChunk(i)
		if err != nil {
			return err
		}
		got += len(b)
	}
	secs := time.Since(t0).Seconds()
	ok = ok && got == (chunks-1)*chunk
	return sendReport(inherited(reportAt, "report"), figures{
		"mb_per_s": float64(got) / secs / 1e6, "bytes": got, "secs": secs, "ok": ok,
	})
}
