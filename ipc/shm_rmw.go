package ipc

import "math"

// Swap, Max and Min: the read-modify-write operations beyond Add and CAS,
// each a compare-and-swap loop on the aligned value (or on the 4-byte word
// containing an 8- or 16-bit one), so they are atomic with respect to every
// other atomic operation on the same bytes.

// Swap atomically stores v as type t at off and returns the value it
// replaced.
func (m *Shm) Swap(t NumType, off int, v Number) (Number, error) {
	return m.rmw("swap", t, off, v, func(old, nv uint64) (uint64, bool) { return nv, true })
}

// Max atomically raises the number at off to v if v is greater, and
// returns the value before (as C's atomic_fetch_max). Integers compare as
// integers of their type, floats as floats (a NaN is never greater, so it
// never replaces a value).
func (m *Shm) Max(t NumType, off int, v Number) (Number, error) {
	return m.rmw("max", t, off, v, func(old, nv uint64) (uint64, bool) { return nv, t.less(old, nv) })
}

// Min atomically lowers the number at off to v if v is smaller, and
// returns the value before.
func (m *Shm) Min(t NumType, off int, v Number) (Number, error) {
	return m.rmw("min", t, off, v, func(old, nv uint64) (uint64, bool) { return nv, t.less(nv, old) })
}

func (m *Shm) rmw(op string, t NumType, off int, v Number, f func(old, nv uint64) (uint64, bool)) (Number, error) {
	if err := m.obj.enter(op); err != nil {
		return Number{}, err
	}
	defer m.obj.exit()
	if err := m.place(op, t, off, true); err != nil {
		return Number{}, err
	}
	nv, err := t.encode(v)
	if err != nil {
		return Number{}, m.obj.errorf(op, "%v", err)
	}
	for {
		old := m.load(t, off)
		w, write := f(old, nv)
		if !write || m.cas(t, off, old, w) {
			return t.decode(old), nil
		}
	}
}

// less compares two raw values of type t.
func (t NumType) less(a, b uint64) bool {
	switch {
	case t == F32:
		return math.Float32frombits(uint32(a)) < math.Float32frombits(uint32(b))
	case t == F64:
		return math.Float64frombits(a) < math.Float64frombits(b)
	case t.signed():
		x, _ := t.decode(a).Int64()
		y, _ := t.decode(b).Int64()
		return x < y
	}
	return a < b
}
