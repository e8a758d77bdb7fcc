package ipc

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strconv"
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
	copy(m.data[off:], b)
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

// NumType is the type of a number in shared memory.
type NumType uint8

// The number types, named in scripts "i8" ... "f64".
const (
	I8 NumType = iota + 1
	U8
	I16
	U16
	I32
	U32
	I64
	U64
	F32
	F64
)

var numTypeNames = [...]string{"", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "f32", "f64"}

// ParseNumType maps "i8" ... "f64" to a NumType.
func ParseNumType(s string) (NumType, error) {
	for i, n := range numTypeNames {
		if i > 0 && n == s {
			return NumType(i), nil
		}
	}
	return 0, fmt.Errorf("unknown number type %q (want i8, u8, i16, u16, i32, u32, i64, u64, f32 or f64)", s)
}

func (t NumType) String() string {
	if int(t) < len(numTypeNames) && t > 0 {
		return numTypeNames[t]
	}
	return "NumType(" + strconv.Itoa(int(t)) + ")"
}

// Size is the type's width in bytes (0 for an invalid type).
func (t NumType) Size() int {
	switch t {
	case I8, U8:
		return 1
	case I16, U16:
		return 2
	case I32, U32, F32:
		return 4
	case I64, U64, F64:
		return 8
	}
	return 0
}

func (t NumType) mask() uint64 {
	if t.Size() == 8 {
		return math.MaxUint64
	}
	return 1<<(8*t.Size()) - 1
}

func (t NumType) signed() bool { return t == I8 || t == I16 || t == I32 || t == I64 }

// decode turns raw bits into a Number of t's kind.
func (t NumType) decode(bits uint64) Number {
	switch t {
	case F32:
		return FloatNumber(float64(math.Float32frombits(uint32(bits))))
	case F64:
		return FloatNumber(math.Float64frombits(bits))
	}
	if t.signed() {
		shift := 64 - 8*t.Size()
		return IntNumber(int64(bits<<shift) >> shift)
	}
	return UintNumber(bits)
}

// encode turns v into t's raw bits, refusing values t cannot hold.
func (t NumType) encode(v Number) (uint64, error) {
	switch t {
	case F32:
		f := v.Float64()
		f32 := float32(f)
		if math.IsInf(float64(f32), 0) && !math.IsInf(f, 0) {
			return 0, fmt.Errorf("value %v is out of range for f32", v)
		}
		return uint64(math.Float32bits(f32)), nil
	case F64:
		return math.Float64bits(v.Float64()), nil
	}
	neg, mag, err := v.integer()
	if err != nil {
		return 0, fmt.Errorf("value %v %s (%s holds integers)", v, err, t)
	}
	bits := 8 * t.Size()
	if t.signed() {
		limit := uint64(1) << (bits - 1) // |min|; max is limit-1
		if (neg && mag > limit) || (!neg && mag >= limit) {
			return 0, fmt.Errorf("value %v is out of range for %s", v, t)
		}
		if neg {
			return -mag & t.mask(), nil
		}
		return mag, nil
	}
	if neg || mag > t.mask() {
		return 0, fmt.Errorf("value %v is out of range for %s", v, t)
	}
	return mag, nil
}

// Number is a value read from or written to shared memory: a signed
// integer, an unsigned integer or a float, 64 bits each. Lua passes every
// number as a float64 (FloatNumber); integral floats are accepted wherever
// an integer is needed, and are exact up to 2^53.
type Number struct {
	kind numKind
	bits uint64
}

type numKind uint8

const (
	numInt numKind = iota
	numUint
	numFloat
)

// IntNumber, UintNumber and FloatNumber make Numbers.
func IntNumber(v int64) Number     { return Number{numInt, uint64(v)} }
func UintNumber(v uint64) Number   { return Number{numUint, v} }
func FloatNumber(v float64) Number { return Number{numFloat, math.Float64bits(v)} }

// IsFloat reports whether n holds a float.
func (n Number) IsFloat() bool { return n.kind == numFloat }

// Float64 is n as a float64 (integers beyond 2^53 are rounded): what a Lua
// binding pushes.
func (n Number) Float64() float64 {
	switch n.kind {
	case numInt:
		return float64(int64(n.bits))
	case numUint:
		return float64(n.bits)
	}
	return math.Float64frombits(n.bits)
}

// Int64 is n as an int64 and whether that is exact.
func (n Number) Int64() (int64, bool) {
	neg, mag, err := n.integer()
	if err != nil || (!neg && mag > math.MaxInt64) || (neg && mag > 1<<63) {
		return 0, false
	}
	if neg {
		return int64(-mag), true
	}
	return int64(mag), true
}

// Uint64 is n as a uint64 and whether that is exact.
func (n Number) Uint64() (uint64, bool) {
	neg, mag, err := n.integer()
	if err != nil || (neg && mag != 0) {
		return 0, false
	}
	return mag, true
}

func (n Number) String() string {
	switch n.kind {
	case numInt:
		return strconv.FormatInt(int64(n.bits), 10)
	case numUint:
		return strconv.FormatUint(n.bits, 10)
	}
	return strconv.FormatFloat(math.Float64frombits(n.bits), 'g', -1, 64)
}

// integer returns n as sign and magnitude, or why it is not an integer.
func (n Number) integer() (neg bool, mag uint64, err error) {
	switch n.kind {
	case numInt:
		i := int64(n.bits)
		if i < 0 {
			return true, -uint64(i), nil
		}
		return false, uint64(i), nil
	case numUint:
		return false, n.bits, nil
	}
	f := math.Float64frombits(n.bits)
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return false, 0, fmt.Errorf("is not a finite number")
	case f != math.Trunc(f):
		return false, 0, fmt.Errorf("is not an integer")
	case f <= -(1<<64) || f >= 1<<64:
		return false, 0, fmt.Errorf("is beyond 64 bits")
	case f < 0:
		return true, uint64(-f), nil
	}
	return false, uint64(f), nil
}

// wrapBits is n as a two's complement 64-bit pattern, for wrapping adds.
func (n Number) wrapBits() (uint64, error) {
	neg, mag, err := n.integer()
	if err != nil {
		return 0, fmt.Errorf("%v %s", n, err)
	}
	if neg {
		return -mag, nil
	}
	return mag, nil
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// regionObject is what every object in a Region shares: the script's names
// for it, the mapping, the wait-status hook, and a use count so that Close
// never unmaps memory another goroutine is still using (a call after Close
// gets an error instead of a fault).
//
// The use count is a Go atomic every call touches on entry and exit; besides
// keeping the mapping alive it gives the race detector the happens-before
// edges that the shared-memory atomics (which it ignores) carry.
type regionObject struct {
	kind, name string
	region     *Region
	refs       atomic.Int64 // 1 while open, plus one per call in flight
	closed     atomic.Bool
	unmapped   atomic.Bool
	ws         *WaitStatus
	id         int32
}

func (o *regionObject) init(kind, name string, r *Region) {
	o.kind, o.name, o.region, o.id = kind, name, r, -1
	o.refs.Store(1)
}

// enter starts a call; exit must follow when it returns nil.
func (o *regionObject) enter(op string) error {
	o.refs.Add(1)
	if o.closed.Load() {
		o.exit()
		return o.errorf(op, "%s is closed", o.kind)
	}
	return nil
}

func (o *regionObject) exit() {
	if o.refs.Add(-1) == 0 && o.unmapped.CompareAndSwap(false, true) {
		o.region.Close()
	}
}

// close marks the object closed, runs wake (to release this process's
// sleepers, which then see closed) and drops the open reference; the last
// call in flight unmaps.
func (o *regionObject) close(wake func()) error {
	if o.closed.Swap(true) {
		return nil
	}
	if wake != nil {
		wake()
	}
	o.exit()
	return nil
}

// isClosed is checked by sleepers after each wakeup.
func (o *regionObject) isClosed() bool { return o.closed.Load() }

// errorf formats an error in the script's words: `shm "m": get: ...`.
func (o *regionObject) errorf(op, format string, args ...any) error {
	return fmt.Errorf("%s %q: %s: %s", o.kind, o.name, op, fmt.Sprintf(format, args...))
}

// setStatus is SetStatus for every region object.
func (o *regionObject) setStatus(ws *WaitStatus, object int32) { o.ws, o.id = ws, object }

// openRegionChecked maps an inherited memfd and checks that it holds an
// object of the expected kind, so a miswired descriptor fails clearly. On
// success the Region owns f; on failure f is left to the caller.
func openRegionChecked(f *os.File, kind, name string, magic uint32, minSize int) (*Region, error) {
	if f == nil {
		return nil, fmt.Errorf("%s %q: open: no descriptor", kind, name)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s %q: open: %w", kind, name, err)
	}
	if st.Size() < int64(minSize) || st.Size() > math.MaxInt32 {
		return nil, fmt.Errorf("%s %q: open: descriptor %s does not hold a %s (size %d)", kind, name, f.Name(), kind, st.Size())
	}
	r, err := OpenRegion(f)
	if err != nil {
		return nil, fmt.Errorf("%s %q: open: %w", kind, name, err)
	}
	if load32(r.U32(0)) != magic {
		unix.Munmap(r.Mem)
		return nil, fmt.Errorf("%s %q: open: descriptor %s does not hold a %s", kind, name, f.Name(), kind)
	}
	return r, nil
}
