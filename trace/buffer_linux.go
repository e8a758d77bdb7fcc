package trace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/ipc"
)

// Buffer is one process's event buffer: a memfd the supervisor creates and
// the process appends to. Because it is shared memory, what a process
// recorded survives the process (SIGKILL included): the supervisor reads
// it after the process is gone.
//
// Layout (little-endian):
//
//	0   magic "ITRC"
//	4   layout version
//	8   used: bytes of records published (the writer stores it after each record)
//	16  count: records published
//	24  dropped: records that did not fit
//	32  capacity: bytes for records
//	64  records: uvarint length, then the record (record.go)
//
// One writer per buffer (the process's Lua goroutine; the supervisor
// writes only before the process starts or after it is gone).
type Buffer struct {
	region *ipc.Region
	used   *uint64
	count  *uint64
	drop   *uint64
	data   []byte
	ready  uint64 // bytes of data known to be backed by pages (populate)
}

// populateChunk is how much of the buffer is made present at once ahead of
// the writer: one madvise instead of a page fault per 4 KiB (on a traced
// mailbox the faults were a quarter of a send).
const populateChunk = 1 << 20

const (
	bufMagic      = 0x43525449 // "ITRC"
	bufLayout     = 4          // 2: a record's Seq may be its clock's (seqVC); 3: lengths are uvarints; 4: masks XORed with the last
	bufHeader     = 64
	DefaultBuffer = 64 << 20 // bytes per process: about a million events; only pages written cost memory
)

// NewBuffer creates a buffer of size bytes (0: DefaultBuffer).
func NewBuffer(name string, size int) (*Buffer, error) {
	if size <= 0 {
		size = DefaultBuffer
	}
	if size < bufHeader+256 {
		size = bufHeader + 256
	}
	r, err := ipc.NewRegion("trace:"+name, size)
	if err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint32(r.Mem[0:], bufMagic)
	binary.LittleEndian.PutUint32(r.Mem[4:], bufLayout)
	binary.LittleEndian.PutUint64(r.Mem[32:], uint64(size-bufHeader))
	return newBuffer(r), nil
}

// OpenBuffer maps an inherited buffer; the Buffer owns f from then on.
func OpenBuffer(f *os.File) (*Buffer, error) {
	r, err := ipc.OpenRegion(f)
	if err != nil {
		return nil, err
	}
	if len(r.Mem) < bufHeader || binary.LittleEndian.Uint32(r.Mem) != bufMagic || binary.LittleEndian.Uint32(r.Mem[4:]) != bufLayout {
		r.Close()
		return nil, errors.New("trace buffer: not an ipcscript trace buffer")
	}
	return newBuffer(r), nil
}

func newBuffer(r *ipc.Region) *Buffer {
	return &Buffer{region: r, used: r.U64(8), count: r.U64(16), drop: r.U64(24), data: r.Mem[bufHeader:]}
}

// File is the memfd to hand to the process.
func (b *Buffer) File() *os.File { return b.region.File }

// Close unmaps the buffer and closes its descriptor.
func (b *Buffer) Close() error { return b.region.Close() }

// Append publishes one record. When it does not fit, it is counted as
// dropped instead (the merge says so in the trace).
func (b *Buffer) Append(rec []byte) bool {
	used := atomic.LoadUint64(b.used)
	k := uvarintLen(uint64(len(rec)))
	end := used + uint64(k) + uint64(len(rec))
	if end > uint64(len(b.data)) {
		atomic.AddUint64(b.drop, 1)
		return false
	}
	if end > b.ready {
		b.populate(end)
	}
	putUvarint(b.data, int(used), uint64(len(rec)))
	copy(b.data[used+uint64(k):], rec)
	atomic.StoreUint64(b.count, atomic.LoadUint64(b.count)+1)
	atomic.StoreUint64(b.used, end)
	return true
}

// reserve is the room for a record of at most n bytes after the
// published ones, for commit to publish (nil when it may not fit: then
// Append says whether the record does). The record goes one byte after
// the published ones, where a length under 128 leaves it.
func (b *Buffer) reserve(n int) []byte {
	used := atomic.LoadUint64(b.used)
	end := used + uint64(uvarintLen(uint64(n))) + uint64(n)
	if end > uint64(len(b.data)) {
		return nil
	}
	if end > b.ready {
		b.populate(end)
	}
	return b.data[used+1 : end]
}

// commit publishes the record of n bytes written in what reserve gave
// (a length of more than one byte moves it up to make room).
func (b *Buffer) commit(n int) {
	used := atomic.LoadUint64(b.used)
	k := 1
	if n < 0x80 {
		b.data[used] = byte(n)
	} else {
		k = uvarintLen(uint64(n))
		copy(b.data[used+uint64(k):], b.data[used+1:used+1+uint64(n)])
		putUvarint(b.data, int(used), uint64(n))
	}
	atomic.StoreUint64(b.count, atomic.LoadUint64(b.count)+1)
	atomic.StoreUint64(b.used, used+uint64(k)+uint64(n))
}

// uvarintLen is how many bytes the uvarint x takes.
func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// Bytes is how many bytes the published records take (with their
// lengths).
func (b *Buffer) Bytes() uint64 { return atomic.LoadUint64(b.used) }

// Stats reports records published and dropped.
func (b *Buffer) Stats() (count, dropped uint64) {
	return atomic.LoadUint64(b.count), atomic.LoadUint64(b.drop)
}

// Records calls fn with each published record, in order.
func (b *Buffer) Records(fn func(rec []byte) error) error {
	used := atomic.LoadUint64(b.used)
	if used > uint64(len(b.data)) {
		return fmt.Errorf("trace buffer: corrupt (%d bytes used of %d)", used, len(b.data))
	}
	data := b.data[:used]
	for off := 0; off < len(data); {
		n, i := getUvarint(data, off)
		if i < 0 || n > uint64(len(data)-i) {
			return fmt.Errorf("trace buffer: record at %d runs past the end", off)
		}
		if err := fn(data[i : i+int(n)]); err != nil {
			return err
		}
		off = i + int(n)
	}
	return nil
}

// populate makes the pages up to past end present with MADV_POPULATE_WRITE
// (Linux 5.14); on older kernels the pages fault in one by one as before.
func (b *Buffer) populate(end uint64) {
	from := b.ready &^ 4095
	to := min(max(end, b.ready)+populateChunk, uint64(len(b.data)))
	b.ready = to
	// data starts 64 bytes into a page-aligned mapping: align the range.
	base := uint64(bufHeader)
	lo := (base + from) &^ 4095
	hi := min((base+to+4095)&^4095, uint64(len(b.region.Mem)))
	_ = unix.Madvise(b.region.Mem[lo:hi], madvPopulateWrite)
}

const madvPopulateWrite = 23 // MADV_POPULATE_WRITE
