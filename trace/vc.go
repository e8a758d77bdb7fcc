package trace

// VC is a vector clock indexed by process index. A missing component is 0,
// so clocks of different lengths compare as if padded with zeros.
type VC []uint64

// Get returns component i (0 when beyond the clock).
func (v VC) Get(i int) uint64 {
	if i < len(v) {
		return v[i]
	}
	return 0
}

// Leq reports whether v <= w component-wise.
func (v VC) Leq(w VC) bool {
	for i, x := range v {
		if x > w.Get(i) {
			return false
		}
	}
	return true
}

// Merge sets v to the component-wise maximum of v and w, growing v as
// needed, and returns it.
func (v VC) Merge(w VC) VC {
	for len(v) < len(w) {
		v = append(v, 0)
	}
	for i, x := range w {
		if x > v[i] {
			v[i] = x
		}
	}
	return v
}

// Clone returns a copy of v.
func (v VC) Clone() VC { return append(VC(nil), v...) }

// HappensBefore reports whether event a happened before event b: b's clock
// knows a's tick. An event does not happen before itself.
func HappensBefore(a, b *Event) bool {
	if a.P == b.P && a.Seq == b.Seq {
		return false
	}
	return a.VC.Get(a.P) <= b.VC.Get(a.P)
}

// Concurrent reports whether neither of a and b happened before the other.
func Concurrent(a, b *Event) bool {
	return !HappensBefore(a, b) && !HappensBefore(b, a) && !(a.P == b.P && a.Seq == b.Seq)
}
