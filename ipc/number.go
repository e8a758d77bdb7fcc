package ipc

import (
	"fmt"
	"math"
	"strconv"
)

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
func IntNumber(v int64) Number { return Number{numInt, uint64(v)} }

func UintNumber(v uint64) Number { return Number{numUint, v} }

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
