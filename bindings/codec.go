package bindings

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

// A message body is one Lua value encoded as MessagePack
// (https://msgpack.org/), so that a program in any language can read it:
//
//	Lua value                     MessagePack
//	nil                           nil
//	true, false                   bool
//	integral number in int64      int (the shortest form: fixint, int8..int64,
//	                              uint8..uint64 for non-negative values)
//	any other number              float64 (fractions, NaN, ±Inf, -0, 2^63 ...)
//	string, valid UTF-8           str
//	string, any other bytes       bin (so decoders that check UTF-8 in str,
//	                              Python's msgpack among them, still read it)
//	table with keys 1..n, n >= 0  array of n values (the empty table too)
//	table with integer keys 1..n  array of n values with nil in the holes,
//	  of which at least half      when at least half of 1..n are present
//	  are present ({1, nil, 3})   (so that Python's msgpack, which refuses
//	                              integer map keys by default, reads it)
//	any other table               map (keys and values encoded alike)
//
// Decoding reads str and bin as Lua strings, every integer and float as a
// Lua number (integers beyond 2^53 lose precision, as in Lua itself),
// arrays as tables 1..n and maps as tables; both an empty array and an
// empty map become {}. A nil inside an array leaves a hole; a map entry
// with a nil value is dropped. The timestamp extension (type -1, any of its
// three sizes) becomes a number of seconds since the epoch, with the
// nanoseconds as a fraction. Other extension types, nil or NaN map keys,
// bytes after the value, and integer keys so sparse that the table would
// need more than maxSparseSlots empty slots are refused.
//
// Refused when encoding: functions, userdata (ipc objects included),
// coroutines, channels, tables that contain themselves, tables nested more
// than maxBodyDepth deep, and bodies that with the type exceed
// ipc.MaxMessageSize. Metatables are ignored: a table is sent as its raw
// contents (a standard library a child has not opened yet is opened first,
// Env.OpenLazy, so that it is what the parent would send).

// maxBodyDepth bounds table nesting, so that neither encoding nor decoding
// (of a hostile body) can recurse without end.
const maxBodyDepth = 200

// maxSparseSlots bounds the empty array slots that integer map keys beyond
// a table's end may create when a body is decoded (16 MiB of slots).
const maxSparseSlots = 1 << 20

// bodyEncoder encodes Lua values into a buffer it reuses from one message
// to the next: a steady stream of sends allocates nothing here.
type bodyEncoder struct {
	buf   []byte
	n     int // bytes the body needs; beyond limit they are counted, not kept
	limit int
	enc   *msgpack.Encoder
	path  []*lua.LTable // tables being encoded, outermost first: cycles
	// pass collects the descriptors of a body that may carry them
	// (fdpass.go); nil when the message cannot (a socket connection).
	pass *passList
	// open fills a table the runtime fills on first use (Env.OpenLazy);
	// nil: none.
	open func(*lua.LTable)
	// last is the string body whose encoding buf holds, when lastOK: see
	// encodeString.
	last   string
	lastOK bool
}

// encodeError says what cannot be sent and where in the body it is.
type encodeError struct {
	keys []lua.LValue // innermost first, as the error unwinds
	what string
}

func (e *encodeError) Error() string {
	var b []byte
	b = append(b, "body"...)
	for i := len(e.keys) - 1; i >= 0; i-- {
		b = appendPathKey(b, e.keys[i])
	}
	return string(b) + ": " + e.what
}

// appendPathKey renders one step of a path in Lua syntax: .name, [3],
// ["a key"], [true].
func appendPathKey(b []byte, k lua.LValue) []byte {
	switch k := k.(type) {
	case lua.LString:
		if isIdentifier(string(k)) {
			return append(append(b, '.'), k...)
		}
		return append(strconv.AppendQuote(append(b, '['), string(k)), ']')
	case lua.LNumber:
		return append(append(append(b, '['), k.String()...), ']')
	case lua.LBool:
		return append(strconv.AppendBool(append(b, '['), bool(k)), ']')
	}
	return append(append(append(b, "[<"...), typeName(k)...), ">]"...)
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// bodySizeError is a body over the size limit; Size is the whole message.
type bodySizeError struct{ size int }

func (e *bodySizeError) Error() string {
	return fmt.Sprintf("message of %s exceeds the %d MiB limit (ipc.MaxMessageSize = %d bytes, type and body together)",
		byteSizeText(e.size), ipc.MaxMessageSize>>20, ipc.MaxMessageSize)
}

func (e *bodySizeError) Is(target error) bool { return target == ipc.ErrTooLarge }

func byteSizeText(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	}
	return fmt.Sprintf("%d bytes", n)
}

func newBodyEncoder() *bodyEncoder {
	e := &bodyEncoder{buf: make([]byte, 0, 512)}
	e.enc = msgpack.NewEncoder(e)
	return e
}

// Write and WriteByte make the encoder msgpack's writer: they append to
// the buffer until the limit and only count past it, so an oversize body
// is measured exactly without ever being held.
func (e *bodyEncoder) Write(p []byte) (int, error) {
	e.n += len(p)
	if e.n <= e.limit {
		e.buf = append(e.buf, p...)
	}
	return len(p), nil
}

func (e *bodyEncoder) WriteByte(c byte) error {
	e.n++
	if e.n <= e.limit {
		e.buf = append(e.buf, c)
	}
	return nil
}

// encode encodes v. typeLen is the length of the message's type, which
// counts against ipc.MaxMessageSize with the body. The bytes returned are
// valid until the next call.
func (e *bodyEncoder) encode(v lua.LValue, typeLen int) ([]byte, error) {
	if s, ok := v.(lua.LString); ok {
		return e.encodeString(string(s), typeLen)
	}
	e.last, e.lastOK = "", false
	if cap(e.buf) > 1<<20 {
		e.buf = make([]byte, 0, 512) // a one-off large body is not kept
	}
	e.buf, e.n, e.limit = e.buf[:0], 0, ipc.MaxMessageSize-typeLen
	e.path = e.path[:0]
	err := e.value(v, 0)
	clear(e.path[:cap(e.path)]) // let the tables go
	if err != nil {
		return nil, err
	}
	if e.n > e.limit {
		return nil, &bodySizeError{size: e.n + typeLen}
	}
	return e.buf, nil
}

// encodeString encodes a body that is one string, the common message,
// without the generic encoder: the str (valid UTF-8) or bin header, then
// the bytes, the same encoding value() gives. A string sent again (the
// same bytes in memory: Lua strings never change, so the same pointer and
// length is the same string), as a loop sending one body or echoing the
// body it received does, is already encoded in buf: neither its UTF-8
// check nor its copy is repeated. ~450 instructions for 64 bytes through
// the generic encoder, ~40 on a repeat.
func (e *bodyEncoder) encodeString(s string, typeLen int) ([]byte, error) {
	limit := ipc.MaxMessageSize - typeLen
	if e.lastOK && len(s) == len(e.last) && unsafe.StringData(s) == unsafe.StringData(e.last) {
		if len(e.buf) > limit {
			return nil, &bodySizeError{size: len(e.buf) + typeLen}
		}
		return e.buf, nil
	}
	e.last, e.lastOK = "", false
	n := len(s)
	var h [5]byte
	var hdr []byte
	switch utf := utf8.ValidString(s); {
	case utf && n < 32:
		h[0] = 0xa0 | byte(n) // fixstr
		hdr = h[:1]
	case n < 256:
		h[0], h[1] = mpStr8, byte(n)
		if !utf {
			h[0] = mpBin8
		}
		hdr = h[:2]
	case n <= math.MaxUint16:
		h[0] = mpStr16
		if !utf {
			h[0] = mpBin16
		}
		binary.BigEndian.PutUint16(h[1:], uint16(n))
		hdr = h[:3]
	default:
		h[0] = mpStr32
		if !utf {
			h[0] = mpBin32
		}
		binary.BigEndian.PutUint32(h[1:], uint32(n))
		hdr = h[:5]
	}
	if size := len(hdr) + n; size > limit {
		return nil, &bodySizeError{size: size + typeLen}
	}
	if cap(e.buf) > 1<<20 && len(hdr)+n <= 512 {
		e.buf = make([]byte, 0, 512) // a one-off large body is not kept
	}
	e.buf = append(append(e.buf[:0], hdr...), s...)
	e.last, e.lastOK = s, true
	return e.buf, nil
}

func (e *bodyEncoder) value(v lua.LValue, depth int) error {
	switch v := v.(type) {
	case *lua.LNilType:
		return e.enc.EncodeNil()
	case lua.LBool:
		return e.enc.EncodeBool(bool(v))
	case lua.LNumber:
		return e.number(float64(v))
	case lua.LString:
		return e.string(string(v))
	case *lua.LTable:
		return e.table(v, depth)
	case *lua.LUserData:
		if o, ok := v.Value.(passable); ok {
			if name, ok := v.Value.(fmt.Stringer); ok {
				return e.descriptor(o, name)
			}
		}
	}
	return &encodeError{what: unsendable(v) + " cannot be sent"}
}

// unsendable names a value that has no encoding, with an article.
func unsendable(v lua.LValue) string {
	switch v := v.(type) {
	case *lua.LFunction:
		return "a function"
	case *lua.LState:
		return "a coroutine"
	case lua.LChannel:
		return "a channel"
	case *lua.LUserData:
		if s, ok := v.Value.(fmt.Stringer); ok {
			// ipc objects: say how they are shared instead.
			return s.String() + " (an object: processes share it by declaring it, not by sending it)"
		}
		return "a userdata"
	}
	return "a " + v.Type().String()
}

func (e *bodyEncoder) number(f float64) error {
	// Integral values in int64 range go as integers; -0 stays a float so
	// that its sign survives. int64(f) of NaN, ±Inf or 2^63 does not
	// convert back to f, so those go as floats too.
	if i := int64(f); float64(i) == f && (i != 0 || !math.Signbit(f)) && f < 1<<63 {
		return e.enc.EncodeInt(i)
	}
	return e.enc.EncodeFloat64(f)
}

func (e *bodyEncoder) string(s string) error {
	if utf8.ValidString(s) {
		return e.enc.EncodeString(s)
	}
	if err := e.enc.EncodeBytesLen(len(s)); err != nil {
		return err
	}
	_, err := e.Write(stringBytes(s))
	return err
}

func (e *bodyEncoder) table(t *lua.LTable, depth int) error {
	for _, p := range e.path {
		if p == t {
			return &encodeError{what: "a table that contains itself (a cycle) cannot be sent"}
		}
	}
	if depth >= maxBodyDepth {
		return &encodeError{what: fmt.Sprintf("tables nested more than %d deep cannot be sent", maxBodyDepth)}
	}
	e.path = append(e.path, t)
	defer func() { e.path = e.path[:len(e.path)-1] }()
	if e.open != nil && t.Metatable != lua.LNil {
		e.open(t) // an unopened library: its contents, as in the parent
	}

	// A sequence: the array part 1..n without holes and nothing else.
	n := t.MaxN()
	seq := true
	for i := 1; i <= n; i++ {
		if t.RawGetInt(i) == lua.LNil {
			seq = false
			break
		}
	}
	if seq && firstHashKey(t, n) == lua.LNil {
		return e.array(t, n, depth)
	}
	if n, ok := arrayWithHoles(t); ok {
		return e.array(t, n, depth)
	}

	count := 0
	for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
		if v != lua.LNil {
			count++
		}
	}
	if err := e.enc.EncodeMapLen(count); err != nil {
		return err
	}
	for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
		if v == lua.LNil {
			continue
		}
		if err := e.value(k, depth+1); err != nil {
			if ee, ok := err.(*encodeError); ok && len(ee.keys) == 0 {
				ee.what = "a table key: " + ee.what
			}
			return encodedAt(err, k)
		}
		if err := e.value(v, depth+1); err != nil {
			return encodedAt(err, k)
		}
	}
	return nil
}

// array encodes t[1..n] as an array, nil where t has a hole.
func (e *bodyEncoder) array(t *lua.LTable, n, depth int) error {
	if err := e.enc.EncodeArrayLen(n); err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		if err := e.value(t.RawGetInt(i), depth+1); err != nil {
			return encodedAt(err, lua.LNumber(i))
		}
	}
	return nil
}

// arrayWithHoles reports whether t's keys are all integers in 1..n, n its
// largest key, with at least half of 1..n present: such a table ({1, nil,
// 3}, a list whose element was removed) goes as an array with nil in the
// holes rather than as a map with integer keys, which many decoders
// (Python's msgpack by default) refuse. It decodes to the same table.
func arrayWithHoles(t *lua.LTable) (int, bool) {
	n, count := 0, 0
	for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
		if v == lua.LNil {
			continue
		}
		f, ok := k.(lua.LNumber)
		if !ok || f < 1 || float64(f) != math.Trunc(float64(f)) || float64(f) > float64(lua.MaxArrayIndex) {
			return 0, false
		}
		n = max(n, int(f))
		count++
	}
	return n, count > 0 && 2*count >= n
}

// firstHashKey returns the first key after the array part 1..n, LNil when
// the table has nothing else.
func firstHashKey(t *lua.LTable, n int) lua.LValue {
	var k lua.LValue
	if n == 0 {
		k, _ = t.Next(lua.LNil)
	} else {
		k, _ = t.Next(boxInt(n))
	}
	return k
}

// smallInts are the numbers 0..1023 as Lua values, boxed once: a number
// put into an interface otherwise costs an allocation. Made on first use,
// not at package initialisation: every process starts with this package
// (the supervisor, the command line, each child, even the bare re-exec),
// and 1024 boxes were most of its initialisation's allocations.
var smallInts atomic.Pointer[[1024]lua.LValue]

// boxInt returns n as a Lua value, without allocating when it is small.
func boxInt[T int | uint64](n T) lua.LValue {
	if n >= 0 && uint64(n) < 1024 {
		if a := smallInts.Load(); a != nil {
			return a[n]
		}
		return makeSmallInts()[n]
	}
	return lua.LNumber(n)
}

// smallInt is boxInt for 0 <= n < 1024, small enough to inline.
func smallInt(n int) lua.LValue {
	a := smallInts.Load()
	if a == nil {
		a = makeSmallInts()
	}
	return a[n&1023]
}

func makeSmallInts() *[1024]lua.LValue {
	a := new([1024]lua.LValue)
	for i := range a {
		a[i] = lua.LNumber(i)
	}
	smallInts.CompareAndSwap(nil, a)
	return smallInts.Load()
}

// encodedAt records that err happened under key k.
func encodedAt(err error, k lua.LValue) error {
	if ee, ok := err.(*encodeError); ok {
		ee.keys = append(ee.keys, k)
	}
	return err
}

// bodyDecoder decodes bodies into Lua values. It never panics on garbage,
// and what it allocates is bounded by a small multiple of the body's size
// (a length prefix is believed only as far as the bytes left can hold).
type bodyDecoder struct {
	r    bytes.Reader
	dec  *msgpack.Decoder
	body []byte
	// sparse is how many empty slots integer map keys may still add to
	// tables (maxSparseSlots per body): gopher-lua keeps keys 1..2^26 in
	// an array, so {[2^25] = 1} costs 2^25 slots, and a few bytes must not
	// cost gigabytes.
	sparse int
	// The last short string body decoded, and its bytes: see decode.
	lastShort lua.LValue
	lastBytes string
	// reused: the last decode returned lastShort again, a value that a
	// table may already hold (fillMessageTable).
	reused bool
	// files makes the object a descriptor extension describes (fdpass.go);
	// nil where a body may not carry descriptors (from a socket).
	files func(L *lua.LState, payload []byte) (lua.LValue, error)
	// budget is what the decoded value may still cost in memory, in
	// estimated bytes (decodeBudget): one byte of MessagePack can be an
	// empty table, which costs Lua ~150 bytes, so without a bound an
	// 8 MiB body of empty arrays cost 1.27 GB.
	budget int
}

// The decoder's memory estimate: what gopher-lua allocates for each value,
// rounded up. A body may cost at most decodeFactor times its size, plus
// decodeSlack so that small bodies are never refused.
const (
	decodeFactor = 32
	decodeSlack  = 1 << 20
	costTable    = 128 // an LTable and its boxing
	costSlot     = 16  // an array slot or a boxed number
	costEntry    = 64  // a map entry: value, key list, key index
	costString   = 32  // a string's header and boxing, plus its bytes
)

func decodeBudget(n int) int { return decodeFactor*n + decodeSlack }

// charge takes n estimated bytes from the budget.
func (d *bodyDecoder) charge(n int) error {
	if d.budget -= n; d.budget < 0 {
		return fmt.Errorf("the body of %d bytes would take more than %d MiB to decode (at most %d times its size): too many tables for its size", len(d.body), decodeBudget(len(d.body))>>20, decodeFactor)
	}
	return nil
}

func newBodyDecoder() *bodyDecoder {
	d := &bodyDecoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}

// errBody wraps every decoding failure.
var errBody = errors.New("body is not a valid message body")

func (d *bodyDecoder) decode(L *lua.LState, body []byte) (v lua.LValue, err error) {
	d.reused = false
	if len(body) == 0 { // a sender outside Lua may send no body at all
		return lua.LNil, nil
	}
	if b, ok := shortStringBytes(body); ok {
		// The same short body as the previous one (a stream of "tick",
		// "done", a fixed payload) is the same Lua string: return it
		// rather than allocate its copy again. Lua strings are values, so
		// nobody can tell, except by the garbage not made.
		if d.lastShort != nil && string(b) == d.lastBytes {
			d.reused = true
			return d.lastShort, nil
		}
		s := lua.LString(b)
		d.lastShort, d.lastBytes = s, string(s)
		return d.lastShort, nil
	}
	d.body = body
	d.sparse = maxSparseSlots
	d.budget = decodeBudget(len(body))
	d.r.Reset(body)
	d.dec.ResetReader(&d.r)
	defer func() { d.body = nil }()
	v, err = d.value(L, 0)
	if err == nil && d.r.Len() != 0 {
		err = fmt.Errorf("%d bytes after the value", d.r.Len())
	}
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = errors.New("truncated")
		}
		return lua.LNil, fmt.Errorf("%w (MessagePack): at byte %d: %v", errBody, len(body)-d.r.Len(), err)
	}
	return v, nil
}

// repeated reports whether body is the short string body decoded last
// (decode would return lastShort again), without decode's call.
func (d *bodyDecoder) repeated(body []byte) bool {
	if d.lastShort == nil {
		return false
	}
	var b []byte
	switch n := len(d.lastBytes); {
	case len(body) == n+1 && n < 32 && body[0] == 0xa0|byte(n): // fixstr
		b = body[1:]
	case len(body) == n+2 && n < 256 && (body[0] == mpStr8 || body[0] == mpBin8) && body[1] == byte(n):
		b = body[2:]
	default:
		return false
	}
	return string(b) == d.lastBytes
}

// shortString decodes a body that is one str or bin of fewer than 256
// bytes and nothing else (the common small message) without the general
// decoder: the same value the general path returns. ok is false for any
// other body.
func shortString(body []byte) (lua.LValue, bool) {
	if b, ok := shortStringBytes(body); ok {
		return lua.LString(b), true
	}
	return nil, false
}

// shortStringBytes returns the bytes of the string shortString decodes.
func shortStringBytes(body []byte) ([]byte, bool) {
	c := body[0]
	switch {
	case c >= 0xa0 && c <= 0xbf: // fixstr
		if int(c&0x1f) == len(body)-1 {
			return body[1:], true
		}
	case c == mpStr8 || c == mpBin8:
		if len(body) >= 2 && int(body[1]) == len(body)-2 {
			return body[2:], true
		}
	}
	return nil, false
}

// MessagePack codes (the spec's names).
const (
	mpNil     = 0xc0
	mpFalse   = 0xc2
	mpTrue    = 0xc3
	mpBin8    = 0xc4
	mpBin16   = 0xc5
	mpBin32   = 0xc6
	mpFloat32 = 0xca
	mpFloat64 = 0xcb
	mpUint8   = 0xcc
	mpUint64  = 0xcf
	mpInt8    = 0xd0
	mpInt64   = 0xd3
	mpStr8    = 0xd9
	mpStr16   = 0xda
	mpStr32   = 0xdb
	mpArray16 = 0xdc
	mpArray32 = 0xdd
	mpMap16   = 0xde
	mpMap32   = 0xdf
)

func (d *bodyDecoder) value(L *lua.LState, depth int) (lua.LValue, error) {
	c, err := d.dec.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || (c >= mpInt8 && c <= mpInt64) || (c >= mpUint8 && c < mpUint64):
		i, err := d.dec.DecodeInt64()
		return lua.LNumber(i), err
	case c == mpUint64:
		u, err := d.dec.DecodeUint64()
		return lua.LNumber(u), err
	case c == mpFloat32 || c == mpFloat64:
		f, err := d.dec.DecodeFloat64()
		return lua.LNumber(f), err
	case c >= 0xa0 && c <= 0xbf || (c >= mpStr8 && c <= mpStr32) || (c >= mpBin8 && c <= mpBin32):
		n, err := d.dec.DecodeBytesLen()
		if err != nil {
			return nil, err
		}
		if n > d.r.Len() {
			return nil, fmt.Errorf("string of %d bytes, only %d left", n, d.r.Len())
		}
		if err := d.charge(costString + n); err != nil {
			return nil, err
		}
		pos := len(d.body) - d.r.Len()
		d.r.Seek(int64(n), io.SeekCurrent)
		return lua.LString(d.body[pos : pos+n]), nil
	case c == mpNil:
		return lua.LNil, d.dec.DecodeNil()
	case c == mpFalse || c == mpTrue:
		b, err := d.dec.DecodeBool()
		return lua.LBool(b), err
	case c >= 0x90 && c <= 0x9f || c == mpArray16 || c == mpArray32:
		if depth >= maxBodyDepth {
			return nil, fmt.Errorf("arrays and maps nested more than %d deep", maxBodyDepth)
		}
		n, err := d.dec.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		if n > d.r.Len() { // each element takes at least a byte
			return nil, fmt.Errorf("array of %d elements, only %d bytes left", n, d.r.Len())
		}
		if err := d.charge(costTable + costSlot*n); err != nil {
			return nil, err
		}
		t := L.CreateTable(min(n, 1024), 0)
		for i := 1; i <= n; i++ {
			v, err := d.value(L, depth+1)
			if err != nil {
				return nil, err
			}
			if v != lua.LNil {
				t.RawSetInt(i, v)
			}
		}
		return t, nil
	case c >= 0x80 && c <= 0x8f || c == mpMap16 || c == mpMap32:
		if depth >= maxBodyDepth {
			return nil, fmt.Errorf("arrays and maps nested more than %d deep", maxBodyDepth)
		}
		n, err := d.dec.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		if n > d.r.Len()/2 { // each entry takes at least two bytes
			return nil, fmt.Errorf("map of %d entries, only %d bytes left", n, d.r.Len())
		}
		if err := d.charge(costTable + costEntry*n); err != nil {
			return nil, err
		}
		t := L.CreateTable(0, min(n, 1024))
		for range n {
			k, err := d.value(L, depth+1)
			if err != nil {
				return nil, err
			}
			v, err := d.value(L, depth+1)
			if err != nil {
				return nil, err
			}
			switch kk := k.(type) {
			case *lua.LNilType:
				return nil, errors.New("a map key is nil")
			case lua.LNumber:
				if kk != kk {
					return nil, errors.New("a map key is NaN")
				}
				if i := float64(kk); i == math.Trunc(i) && i > float64(t.MaxN()+1) && i < float64(lua.MaxArrayIndex) && v != lua.LNil {
					if d.sparse -= int(i) - t.MaxN() - 1; d.sparse < 0 {
						return nil, fmt.Errorf("integer key %d: the body's integer keys leave more than %d empty slots (keep them dense)", int(i), maxSparseSlots)
					}
				}
			}
			if v != lua.LNil {
				t.RawSet(k, v)
			}
		}
		return t, nil
	}
	if isExtCode(c) {
		return d.extension(L, c)
	}
	return nil, fmt.Errorf("MessagePack code %#02x is reserved and has no Lua value", c)
}

// isExtCode: fixext 1, 2, 4, 8, 16 and ext 8, 16, 32.
func isExtCode(c byte) bool { return (c >= 0xd4 && c <= 0xd8) || (c >= 0xc7 && c <= 0xc9) }

// extension decodes an extension value: the timestamp (type -1) becomes
// seconds since the epoch; any other type is refused with its number.
func (d *bodyDecoder) extension(L *lua.LState, c byte) (lua.LValue, error) {
	typ, n, err := d.dec.DecodeExtHeader()
	if err != nil {
		return nil, err
	}
	if n > d.r.Len() {
		return nil, fmt.Errorf("extension of %d bytes, only %d left", n, d.r.Len())
	}
	pos := len(d.body) - d.r.Len()
	b := d.body[pos : pos+n]
	d.r.Seek(int64(n), io.SeekCurrent)
	if typ == extDescriptor && d.files != nil { // never on a socket (fdpass.go)
		return d.files(L, b)
	}
	if typ != -1 {
		return nil, fmt.Errorf("MessagePack extension type %d is not supported (only the timestamp, type -1, is)", typ)
	}
	switch n {
	case 4: // seconds, u32
		return lua.LNumber(binary.BigEndian.Uint32(b)), nil
	case 8: // nanoseconds (30 bits), seconds (34 bits)
		v := binary.BigEndian.Uint64(b)
		return lua.LNumber(float64(v&(1<<34-1)) + float64(v>>34)/1e9), nil
	case 12: // nanoseconds u32, seconds i64
		ns := binary.BigEndian.Uint32(b)
		sec := int64(binary.BigEndian.Uint64(b[4:]))
		return lua.LNumber(float64(sec) + float64(ns)/1e9), nil
	}
	return nil, fmt.Errorf("a timestamp of %d bytes (want 4, 8 or 12)", n)
}

// stringBytes is s's bytes without a copy; they must only be read.
func stringBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
