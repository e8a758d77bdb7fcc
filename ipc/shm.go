package ipc

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Shm is a block of shared memory: zero-filled bytes that every process of a
// run maps, read and written by byte offset. Plain bytes (Read, Write), typed
// numbers (Get, Set) and atomic read-modify-write (Add, CAS) all address the
// same memory.
//
// Layout of the memfd:
//
//	0    header: magic, version, size (64 bytes)
//	64   the bytes, Size() of them, then zero padding up to a multiple of 8
//
// The padding means the 4-byte word containing any byte is always mapped,
// which is how 8- and 16-bit atomics work (see Add).
//
// Alignment. Add and CAS need natural alignment: an offset that is a
// multiple of the type's size. Get and Set accept any offset; at a naturally
// aligned offset they are single atomic loads and stores (a reader never sees
// half of a value), at an unaligned one they copy bytes and can tear.
//
// Numbers are stored in the machine's byte order (little-endian on amd64 and
// arm64), as a C program mapping the same memory would see them.
type Shm struct {
	obj  regionObject
	size int
	data []byte // the user bytes, len = size rounded up to 8
}

const (
	shmMagic   = 0x4d485349 // "ISHM"
	shmVersion = 1
	shmHeader  = 64
	// MaxShmSize bounds one block (1 GiB): a script that asks for more has
	// made a mistake, and the memory is committed as it is touched.
	MaxShmSize = 1 << 30
)

// NewShm creates a zero-filled block of size bytes. name is the script's
// name for it, used in errors.
func NewShm(name string, size int) (*Shm, error) {
	if size <= 0 || size > MaxShmSize {
		return nil, fmt.Errorf("shm %q: size %d must be between 1 and %d bytes", name, size, MaxShmSize)
	}
	r, err := NewRegion("shm:"+name, shmHeader+roundUp(size, 8))
	if err != nil {
		return nil, fmt.Errorf("shm %q: %w", name, err)
	}
	store32(r.U32(0), shmMagic)
	store32(r.U32(4), shmVersion)
	atomic.StoreUint64(r.U64(8), uint64(size))
	return newShm(name, r), nil
}

// OpenShm maps a block created by NewShm from its inherited memfd. The Shm
// owns f from then on.
func OpenShm(f *os.File, name string) (*Shm, error) {
	r, err := openRegionChecked(f, "shm", name, shmMagic, shmHeader+8)
	if err != nil {
		return nil, err
	}
	size := atomic.LoadUint64(r.U64(8))
	if size == 0 || size > MaxShmSize || shmHeader+roundUp(int(size), 8) > len(r.Mem) {
		unix.Munmap(r.Mem)
		return nil, fmt.Errorf("shm %q: open: descriptor holds a damaged shm header (size %d)", name, size)
	}
	return newShm(name, r), nil
}

func newShm(name string, r *Region) *Shm {
	m := &Shm{size: int(atomic.LoadUint64(r.U64(8)))}
	m.obj.init("shm", name, r)
	m.data = r.Mem[shmHeader : shmHeader+roundUp(m.size, 8)]
	return m
}

// Size is the number of usable bytes.
func (m *Shm) Size() int { return m.size }

// Name is the script's name for the block.
func (m *Shm) Name() string { return m.obj.name }

// File is the memfd to hand to a child through ExtraFiles.
func (m *Shm) File() *os.File { return m.obj.region.File }

// Close unmaps the block in this process (once no call is using it) and
// closes the descriptor. Other processes keep their mappings.
func (m *Shm) Close() error { return m.obj.close(nil) }

// Read returns a copy of n bytes at off.
func (m *Shm) Read(off, n int) ([]byte, error) {
	if err := m.obj.enter("read"); err != nil {
		return nil, err
	}
	defer m.obj.exit()
	if err := m.span("read", off, n); err != nil {
		return nil, err
	}
	out := make([]byte, n)
	copy(out, m.data[off:off+n])
	return out, nil
}

// ReadInto copies len(p) bytes at off into p, memory the caller owns:
// nothing is allocated. Like Read, it is not atomic.
func (m *Shm) ReadInto(off int, p []byte) error {
	if err := m.obj.enter("read"); err != nil {
		return err
	}
	defer m.obj.exit()
	if err := m.span("read", off, len(p)); err != nil {
		return err
	}
	copyLarge(p, m.data[off:off+len(p)])
	return nil
}

// ReadString returns the n bytes at off as a string. When they equal last
// (a previous result) it returns last itself, allocating nothing: a reader
// polling a block that seldom changes makes no garbage. Otherwise the new
// string is copied once into memory that is not zeroed first (a plain
// Read zeroes, then copies). Like Read, it is not atomic.
func (m *Shm) ReadString(off, n int, last string) (string, error) {
	if err := m.obj.enter("read"); err != nil {
		return "", err
	}
	defer m.obj.exit()
	if err := m.span("read", off, n); err != nil {
		return "", err
	}
	src := m.data[off : off+n]
	if len(last) == n && string(src) == last {
		return last, nil
	}
	var b strings.Builder
	b.Grow(n)
	b.Write(src)
	return b.String(), nil
}

// Write copies b to off. It is not atomic: a concurrent reader may see part
// of it; guard multi-byte records with a mutex.
func (m *Shm) Write(off int, b []byte) error {
	if err := m.obj.enter("write"); err != nil {
		return err
	}
	defer m.obj.exit()
	if err := m.span("write", off, len(b)); err != nil {
		return err
	}
	copyLarge(m.data[off:], b)
	return nil
}

func (m *Shm) span(op string, off, n int) error {
	if n < 0 {
		return m.obj.errorf(op, "byte count %d is negative", n)
	}
	if off < 0 || off > m.size || n > m.size-off {
		return m.obj.errorf(op, "bytes %d..%d are outside size %d", off, off+n, m.size)
	}
	return nil
}

// place checks that a value of type t fits at off and, for atomics, that off
// is naturally aligned.
func (m *Shm) place(op string, t NumType, off int, atomicOp bool) error {
	if t.Size() == 0 {
		return m.obj.errorf(op, "unknown number type %d", t)
	}
	n := t.Size()
	if off < 0 || off > m.size || n > m.size-off {
		return m.obj.errorf(op, "offset %d + %d bytes (%s) is outside size %d", off, n, t, m.size)
	}
	if atomicOp && off%n != 0 {
		return m.obj.errorf(op, "offset %d is not aligned for %s (an atomic %s needs a multiple of %d)", off, t, op, n)
	}
	return nil
}

// Get reads the number of type t at off.
func (m *Shm) Get(t NumType, off int) (Number, error) {
	if err := m.obj.enter("get"); err != nil {
		return Number{}, err
	}
	defer m.obj.exit()
	if err := m.place("get", t, off, false); err != nil {
		return Number{}, err
	}
	return t.decode(m.load(t, off)), nil
}

// Set stores v as type t at off. v must be representable in t: an integer
// type refuses fractions and values out of its range, f32 refuses finite
// values that overflow it.
func (m *Shm) Set(t NumType, off int, v Number) error {
	if err := m.obj.enter("set"); err != nil {
		return err
	}
	defer m.obj.exit()
	if err := m.place("set", t, off, false); err != nil {
		return err
	}
	bits, err := t.encode(v)
	if err != nil {
		return m.obj.errorf("set", "%v", err)
	}
	m.store(t, off, bits)
	return nil
}

// Add atomically adds delta to the number of type t at off and returns the
// new value. Integer types wrap around like C's fixed-width arithmetic (the
// delta may be negative for unsigned types: subtracting is adding its two's
// complement); a delta for an integer type must itself be an integer. Float
// types add with a compare-and-swap loop. 8- and 16-bit values are updated
// with a compare-and-swap on the aligned 4-byte word that contains them, so
// they are as atomic as the others and neighbouring bytes are never
// disturbed.
func (m *Shm) Add(t NumType, off int, delta Number) (Number, error) {
	if err := m.obj.enter("add"); err != nil {
		return Number{}, err
	}
	defer m.obj.exit()
	if err := m.place("add", t, off, true); err != nil {
		return Number{}, err
	}
	switch t {
	case F32, F64:
		d := delta.Float64()
		for {
			old := m.load(t, off)
			nv, err := t.encode(FloatNumber(t.decode(old).Float64() + d))
			if err != nil {
				return Number{}, m.obj.errorf("add", "%v", err)
			}
			if m.cas(t, off, old, nv) {
				return t.decode(nv), nil
			}
		}
	}
	d, err := delta.wrapBits()
	if err != nil {
		return Number{}, m.obj.errorf("add", "delta %v", err)
	}
	switch t {
	case I32, U32:
		return t.decode(uint64(atomic.AddUint32(m.u32(off), uint32(d)))), nil
	case I64, U64:
		return t.decode(atomic.AddUint64(m.u64(off), d)), nil
	}
	for { // 8 and 16 bits: CAS on the containing word
		old := m.load(t, off)
		nv := (old + d) & t.mask()
		if m.cas(t, off, old, nv) {
			return t.decode(nv), nil
		}
	}
}

// CAS atomically replaces the number of type t at off with new if it equals
// old, and reports whether it did. old and new must be representable in t
// (as for Set). Floats compare by bit pattern, so -0 and +0 differ and a NaN
// matches the same NaN.
func (m *Shm) CAS(t NumType, off int, old, new Number) (bool, error) {
	if err := m.obj.enter("cas"); err != nil {
		return false, err
	}
	defer m.obj.exit()
	if err := m.place("cas", t, off, true); err != nil {
		return false, err
	}
	o, err := t.encode(old)
	if err != nil {
		return false, m.obj.errorf("cas", "old %v", err)
	}
	n, err := t.encode(new)
	if err != nil {
		return false, m.obj.errorf("cas", "new %v", err)
	}
	return m.cas(t, off, o, n), nil
}

func (m *Shm) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&m.data[off])) }

func (m *Shm) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&m.data[off])) }

// subword returns the aligned word containing the 8- or 16-bit value at off
// and the value's bit shift inside it.
func (m *Shm) subword(t NumType, off int) (*uint32, uint) {
	b := off & 3
	if !nativeLittleEndian {
		b = 4 - b - t.Size()
	}
	return m.u32(off &^ 3), uint(b * 8)
}

// load returns the raw bits at off (bounds already checked).
func (m *Shm) load(t NumType, off int) uint64 {
	n := t.Size()
	if off%n != 0 { // unaligned: plain bytes
		b := m.data[off : off+n]
		switch n {
		case 2:
			return uint64(binary.NativeEndian.Uint16(b))
		case 4:
			return uint64(binary.NativeEndian.Uint32(b))
		default:
			return binary.NativeEndian.Uint64(b)
		}
	}
	switch n {
	case 4:
		return uint64(atomic.LoadUint32(m.u32(off)))
	case 8:
		return atomic.LoadUint64(m.u64(off))
	}
	w, shift := m.subword(t, off)
	return uint64(atomic.LoadUint32(w)>>shift) & t.mask()
}

// store writes raw bits at off (bounds already checked).
func (m *Shm) store(t NumType, off int, bits uint64) {
	n := t.Size()
	if off%n != 0 {
		b := m.data[off : off+n]
		switch n {
		case 2:
			binary.NativeEndian.PutUint16(b, uint16(bits))
		case 4:
			binary.NativeEndian.PutUint32(b, uint32(bits))
		default:
			binary.NativeEndian.PutUint64(b, bits)
		}
		return
	}
	switch n {
	case 4:
		atomic.StoreUint32(m.u32(off), uint32(bits))
		return
	case 8:
		atomic.StoreUint64(m.u64(off), bits)
		return
	}
	for !m.cas(t, off, m.load(t, off), bits) {
	}
}

// cas is compare-and-swap of raw bits at an aligned off.
func (m *Shm) cas(t NumType, off int, old, new uint64) bool {
	switch t.Size() {
	case 4:
		return atomic.CompareAndSwapUint32(m.u32(off), uint32(old), uint32(new))
	case 8:
		return atomic.CompareAndSwapUint64(m.u64(off), old, new)
	}
	w, shift := m.subword(t, off)
	mask := uint32(t.mask()) << shift
	for {
		cur := atomic.LoadUint32(w)
		if uint64(cur&mask>>shift) != old {
			return false
		}
		if atomic.CompareAndSwapUint32(w, cur, cur&^mask|uint32(new)<<shift) {
			return true
		}
		// A neighbouring byte changed under us: try again.
	}
}

var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func roundUp(n, to int) int { return (n + to - 1) / to * to }
