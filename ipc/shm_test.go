package ipc

import (
	"bytes"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func init() {
	registerChild("kern-shm-add", kernChildShmAdd)
}

func newTestShm(tb testing.TB, name string, size int) *Shm {
	tb.Helper()
	m, err := NewShm(name, size)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func mustGet(tb testing.TB, m *Shm, t NumType, off int) Number {
	tb.Helper()
	v, err := m.Get(t, off)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func wantErr(tb testing.TB, err error, parts ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			tb.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

func TestShmBytes(t *testing.T) {
	m := newTestShm(t, "board", 100)
	if m.Size() != 100 {
		t.Fatalf("Size = %d", m.Size())
	}
	b, err := m.Read(0, 100)
	if err != nil || !bytes.Equal(b, make([]byte, 100)) {
		t.Fatalf("fresh shm not zero-filled: %v %v", b, err)
	}
	if err := m.Write(95, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if b, _ := m.Read(95, 5); string(b) != "hello" {
		t.Fatalf("read back %q", b)
	}
	wantErr(t, m.Write(96, []byte("hello")), `shm "board": write: bytes 96..101 are outside size 100`)
	_, err = m.Read(-1, 2)
	wantErr(t, err, `shm "board": read: bytes -1..1 are outside size 100`)
	_, err = m.Read(0, -2)
	wantErr(t, err, "negative")
	if b, err := m.Read(100, 0); err != nil || len(b) != 0 {
		t.Fatalf("empty read at the end: %v %v", b, err)
	}
}

func TestShmNumbers(t *testing.T) {
	m := newTestShm(t, "nums", 64)
	cases := []struct {
		t   NumType
		off int
		v   Number
	}{
		{I8, 0, IntNumber(-128)}, {U8, 1, UintNumber(255)},
		{I16, 2, IntNumber(-32768)}, {U16, 4, UintNumber(65535)},
		{I32, 8, IntNumber(math.MinInt32)}, {U32, 12, UintNumber(math.MaxUint32)},
		{I64, 16, IntNumber(math.MinInt64)}, {U64, 24, UintNumber(math.MaxUint64)},
		{F32, 32, FloatNumber(1.5)}, {F64, 40, FloatNumber(-2.25)},
		// Unaligned places: plain byte copies.
		{I32, 49, IntNumber(-7)}, {U64, 53, UintNumber(1 << 60)}, {F64, 33 + 16, FloatNumber(3)},
	}
	for _, c := range cases {
		if err := m.Set(c.t, c.off, c.v); err != nil {
			t.Fatalf("set %s at %d: %v", c.t, c.off, err)
		}
		if got := mustGet(t, m, c.t, c.off); got != c.v {
			t.Errorf("%s at %d: got %v, want %v", c.t, c.off, got, c.v)
		}
	}
	// Lua hands every number over as a float64.
	if err := m.Set(U16, 4, FloatNumber(1234)); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, m, U16, 4).Float64(); got != 1234 {
		t.Fatalf("u16 from a float: %v", got)
	}
	if got := mustGet(t, m, U8, 1); got != UintNumber(255) {
		t.Fatalf("setting u16 at 4 disturbed u8 at 1: %v", got)
	}
	// Byte order is the machine's, as a C program would see it.
	m.Set(U32, 8, UintNumber(0x01020304))
	b, _ := m.Read(8, 4)
	if nativeLittleEndian && !bytes.Equal(b, []byte{4, 3, 2, 1}) {
		t.Fatalf("u32 bytes %x", b)
	}

	wantErr(t, m.Set(U8, 0, FloatNumber(300)), `shm "nums": set: value 300 is out of range for u8`)
	wantErr(t, m.Set(I8, 0, IntNumber(-129)), "out of range for i8")
	wantErr(t, m.Set(U32, 0, IntNumber(-1)), "out of range for u32")
	wantErr(t, m.Set(I32, 0, FloatNumber(1.5)), "value 1.5 is not an integer (i32 holds integers)")
	wantErr(t, m.Set(I64, 0, FloatNumber(math.NaN())), "not a finite number")
	wantErr(t, m.Set(F32, 0, FloatNumber(1e39)), "out of range for f32")
	_, err := m.Get(I64, 60)
	wantErr(t, err, `shm "nums": get: offset 60 + 8 bytes (i64) is outside size 64`)
	_, err = m.Get(U8, -1)
	wantErr(t, err, "offset -1")
	_, err = m.Get(NumType(99), 0)
	wantErr(t, err, "unknown number type")
}

func TestShmAtomics(t *testing.T) {
	m := newTestShm(t, "counters", 64)
	add := func(typ NumType, off int, d Number) Number {
		t.Helper()
		v, err := m.Add(typ, off, d)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := add(I64, 0, IntNumber(5)); v != IntNumber(5) {
		t.Fatalf("add = %v", v)
	}
	if v := add(I64, 0, FloatNumber(-7)); v != IntNumber(-2) {
		t.Fatalf("add = %v", v)
	}
	if v := add(U32, 8, IntNumber(-1)); v != UintNumber(math.MaxUint32) {
		t.Fatalf("u32 0 - 1 = %v, want wrap to max", v)
	}
	if v := add(F64, 16, FloatNumber(0.5)); v != FloatNumber(0.5) {
		t.Fatalf("f64 add = %v", v)
	}
	if v := add(F32, 24, FloatNumber(0.25)); v != FloatNumber(0.25) {
		t.Fatalf("f32 add = %v", v)
	}
	// 8- and 16-bit atomics work on the containing word without
	// disturbing the neighbours.
	m.Set(U8, 32, UintNumber(255))
	m.Set(U8, 33, UintNumber(0xAA))
	m.Set(U16, 34, UintNumber(0xBBBB))
	if v := add(U8, 32, IntNumber(1)); v != UintNumber(0) {
		t.Fatalf("u8 255+1 = %v, want 0", v)
	}
	if v := add(I8, 33, IntNumber(0)); v != IntNumber(-86) {
		t.Fatalf("i8 view of 0xAA = %v", v)
	}
	if v := add(I16, 34, IntNumber(1)); v != IntNumber(-17476) {
		t.Fatalf("i16 0xBBBB+1 = %v", v)
	}
	if v := mustGet(t, m, U8, 33); v != UintNumber(0xAA) {
		t.Fatalf("neighbour disturbed: %v", v)
	}

	ok, err := m.CAS(U16, 34, UintNumber(0xBBBC), UintNumber(7))
	if err != nil || !ok {
		t.Fatalf("cas = %v %v", ok, err)
	}
	ok, _ = m.CAS(U16, 34, UintNumber(0xBBBC), UintNumber(8))
	if ok || mustGet(t, m, U16, 34) != UintNumber(7) {
		t.Fatal("cas with a stale old value succeeded")
	}
	ok, _ = m.CAS(I64, 0, FloatNumber(-2), FloatNumber(40))
	if !ok || mustGet(t, m, I64, 0) != IntNumber(40) {
		t.Fatal("cas on i64 with float arguments")
	}
	ok, _ = m.CAS(F64, 16, FloatNumber(0.5), FloatNumber(1))
	if !ok {
		t.Fatal("cas on f64")
	}

	_, err = m.Add(U64, 4, IntNumber(1))
	wantErr(t, err, `shm "counters": add: offset 4 is not aligned for u64 (an atomic add needs a multiple of 8)`)
	_, err = m.CAS(U16, 33, IntNumber(0), IntNumber(1))
	wantErr(t, err, "offset 33 is not aligned for u16")
	_, err = m.Add(I32, 62, IntNumber(1))
	wantErr(t, err, "outside size 64")
	_, err = m.Add(I32, 0, FloatNumber(0.5))
	wantErr(t, err, "delta 0.5 is not an integer")
	_, err = m.CAS(U8, 0, IntNumber(256), IntNumber(0))
	wantErr(t, err, "old value 256 is out of range for u8")
}

func TestShmOddSize(t *testing.T) {
	// The last byte of a 5-byte block is at offset 4; its atomic uses the
	// word 4..7, which the padding keeps mapped.
	m := newTestShm(t, "odd", 5)
	for i := 0; i < 300; i++ {
		if _, err := m.Add(U8, 4, IntNumber(1)); err != nil {
			t.Fatal(err)
		}
	}
	if v := mustGet(t, m, U8, 4); v != UintNumber(300%256) {
		t.Fatalf("u8 = %v", v)
	}
	_, err := m.Get(U16, 4)
	wantErr(t, err, "offset 4 + 2 bytes (u16) is outside size 5")
}

func TestShmOpenAndClose(t *testing.T) {
	m := newTestShm(t, "a", 16)
	m.Set(U32, 0, UintNumber(42))
	// A second mapping through a duplicate descriptor, as a child would.
	f, err := dupFile(m.File())
	if err != nil {
		t.Fatal(err)
	}
	v, err := OpenShm(f, "a")
	if err != nil {
		t.Fatal(err)
	}
	if v.Size() != 16 || mustGet(t, v, U32, 0) != UintNumber(42) {
		t.Fatalf("second view: size %d", v.Size())
	}
	v.Close()
	if _, err := v.Get(U32, 0); err == nil || !strings.Contains(err.Error(), `shm "a": get: shm is closed`) {
		t.Fatalf("get after close: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	s, err := NewSemaphore("s", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, _ = dupFile(s.File())
	defer f.Close()
	_, err = OpenShm(f, "a")
	wantErr(t, err, `shm "a": open: descriptor`, "does not hold a shm")

	_, err = NewShm("big", 0)
	wantErr(t, err, `shm "big": size 0 must be between 1`)
}

func TestNumberConversions(t *testing.T) {
	if ty, err := ParseNumType("u16"); err != nil || ty != U16 || ty.Size() != 2 || ty.String() != "u16" {
		t.Fatalf("ParseNumType: %v %v", ty, err)
	}
	_, err := ParseNumType("int")
	wantErr(t, err, `unknown number type "int"`)
	if i, ok := FloatNumber(-3).Int64(); !ok || i != -3 {
		t.Fatal("Int64 of -3.0")
	}
	if _, ok := FloatNumber(0.5).Int64(); ok {
		t.Fatal("Int64 of 0.5 said exact")
	}
	if _, ok := UintNumber(math.MaxUint64).Int64(); ok {
		t.Fatal("Int64 of max uint64 said exact")
	}
	if u, ok := IntNumber(7).Uint64(); !ok || u != 7 {
		t.Fatal("Uint64 of 7")
	}
	if _, ok := IntNumber(-1).Uint64(); ok {
		t.Fatal("Uint64 of -1 said exact")
	}
	if s := UintNumber(math.MaxUint64).String(); s != "18446744073709551615" {
		t.Fatal(s)
	}
}

// TestShmAtomicAddProcesses: 4 processes add 5000 each to the same
// counters with no lock; atomic adds lose nothing, the 8/16-bit ones
// included.
func TestShmAtomicAddProcesses(t *testing.T) {
	const procs, n = 4, 5000
	m := newTestShm(t, "counters", 16)
	var cs []*testChild
	for i := 0; i < procs; i++ {
		cs = append(cs, startChild(t, "kern-shm-add", []*os.File{m.File()}, strconv.Itoa(n)))
	}
	for _, c := range cs {
		c.wait(t)
	}
	if v := mustGet(t, m, I64, 0); v != IntNumber(procs*n) {
		t.Errorf("i64 counter = %v, want %d", v, procs*n)
	}
	if v := mustGet(t, m, U16, 8); v != UintNumber(procs*n) {
		t.Errorf("u16 counter = %v, want %d", v, procs*n)
	}
	if v := mustGet(t, m, U8, 10); v != UintNumber(procs*n%256) {
		t.Errorf("u8 counter = %v, want %d", v, procs*n%256)
	}
	w := -procs * n
	if v := mustGet(t, m, I8, 11); v != IntNumber(int64(int8(w))) {
		t.Errorf("i8 counter = %v, want %d", v, int8(w))
	}
}

func kernChildShmAdd() {
	m, err := OpenShm(childFile(0), "counters")
	if err != nil {
		childFatalf("%v", err)
	}
	n, _ := strconv.Atoi(childArgs()[0])
	for i := 0; i < n; i++ {
		for _, a := range []struct {
			t   NumType
			off int
			d   int64
		}{{I64, 0, 1}, {U16, 8, 1}, {U8, 10, 1}, {I8, 11, -1}} {
			if _, err := m.Add(a.t, a.off, IntNumber(a.d)); err != nil {
				childFatalf("%v", err)
			}
		}
	}
}

// dupFile duplicates f's descriptor (close-on-exec), as inheriting it would.
func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nf *os.File
	var derr error
	rc.Control(func(fd uintptr) {
		var nfd int
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		if derr == nil {
			nf = os.NewFile(uintptr(nfd), f.Name())
		}
	})
	return nf, derr
}
