package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Message is one message: a fixed header (type, source, destination, length
// and control information) and a body. The same encoding is used in the
// shared-memory queues and, behind a length prefix, on byte streams
// (frame.go).
type Message struct {
	Type  string
	Src   int32  // sender's process index (-1 = the parent/outside)
	Dst   int32  // receiving process index, or the mailbox's object id
	Seq   uint64 // per-sender sequence number, set by the caller
	Time  int64  // send time, CLOCK_MONOTONIC nanoseconds; a queue stamps it when 0
	Flags uint16 // control flags (reserved for the runtime)
	Body  []byte // the body (the runtime puts MessagePack here)
}

// Size limits. A message's size is len(Type) + len(Body); the header is not
// counted.
const (
	MaxMessageSize = 8 << 20
	MaxTypeLen     = 255
)

// The encoded header, little-endian, HeaderSize bytes, followed by the type
// bytes and then the body bytes:
//
//	offset size field
//	     0    2 magic 0x4d49 (the bytes "IM")
//	     2    1 version (headerVersion)
//	     3    1 reserved, 0
//	     4    2 flags
//	     6    2 type length, 0..255
//	     8    4 body length, 0..MaxMessageSize-type length
//	    12    4 src (int32)
//	    16    4 dst (int32)
//	    20    4 reserved, 0
//	    24    8 seq
//	    32    8 time (int64, CLOCK_MONOTONIC ns)
//	    40      type bytes, then body bytes
//
// Reserved bytes must be zero so that a later version can use them; a
// decoder rejects a header whose magic, version or reserved bytes differ.
const (
	HeaderSize    = 40
	headerMagic   = 0x4d49
	headerVersion = 1
)

// Header is a decoded message header.
type Header struct {
	Flags   uint16
	TypeLen int
	BodyLen int
	Src     int32
	Dst     int32
	Seq     uint64
	Time    int64
}

// Size is TypeLen + BodyLen: the bytes that follow the header.
func (h *Header) Size() int { return h.TypeLen + h.BodyLen }

// ErrTooLarge is matched (errors.Is) by every error about a message or
// frame over the size limits.
var ErrTooLarge = errors.New("message too large")

// sizeError is an ErrTooLarge whose text says exactly what was too large
// (without a trailing ": message too large").
type sizeError struct{ msg string }

func (e *sizeError) Error() string        { return e.msg }
func (e *sizeError) Is(target error) bool { return target == ErrTooLarge }

func tooLarge(format string, args ...any) error { return &sizeError{fmt.Sprintf(format, args...)} }

// ErrBadHeader is wrapped by every error about a malformed header or frame.
var ErrBadHeader = errors.New("malformed message header")

// Size is the message's size as counted against MaxMessageSize.
func (m *Message) Size() int { return len(m.Type) + len(m.Body) }

// EncodedLen is the number of bytes AppendMessage adds.
func (m *Message) EncodedLen() int { return HeaderSize + m.Size() }

// Check reports whether m is within the size limits. The error wraps
// ErrTooLarge and says what is too large; callers prefix the object's name.
func (m *Message) Check() error {
	if len(m.Type) > MaxTypeLen {
		return tooLarge("message type of %d bytes exceeds the %d-byte limit", len(m.Type), MaxTypeLen)
	}
	if n := m.Size(); n > MaxMessageSize {
		return tooLarge("message of %d bytes exceeds the %d MiB limit", n, MaxMessageSize>>20)
	}
	return nil
}

// PutHeader encodes m's header into b[:HeaderSize]. m must pass Check.
func PutHeader(b []byte, m *Message) {
	_ = b[HeaderSize-1]
	binary.LittleEndian.PutUint16(b[0:], headerMagic)
	b[2] = headerVersion
	b[3] = 0
	binary.LittleEndian.PutUint16(b[4:], m.Flags)
	binary.LittleEndian.PutUint16(b[6:], uint16(len(m.Type)))
	binary.LittleEndian.PutUint32(b[8:], uint32(len(m.Body)))
	binary.LittleEndian.PutUint32(b[12:], uint32(m.Src))
	binary.LittleEndian.PutUint32(b[16:], uint32(m.Dst))
	binary.LittleEndian.PutUint32(b[20:], 0)
	binary.LittleEndian.PutUint64(b[24:], m.Seq)
	binary.LittleEndian.PutUint64(b[32:], uint64(m.Time))
}

// PutMessage encodes m (header, type, body) into b[:m.EncodedLen()]. m must
// pass Check.
func PutMessage(b []byte, m *Message) {
	PutHeader(b, m)
	n := 0
	if m.Type != "" { // most messages are untyped: no call to copy nothing
		n = copy(b[HeaderSize:], m.Type)
	}
	copy(b[HeaderSize+n:], m.Body)
}

// AppendMessage appends m's encoding to b. m must pass Check.
func AppendMessage(b []byte, m *Message) []byte {
	n := len(b)
	b = grow(b, m.EncodedLen())
	PutMessage(b[n:], m)
	return b
}

// DecodeHeader decodes and validates the header at the start of b. It never
// panics and allocates nothing; the lengths it returns are within the size
// limits, so a caller may allocate Size() bytes safely.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadHeader, len(b), HeaderSize)
	}
	if binary.LittleEndian.Uint16(b[0:]) != headerMagic {
		return Header{}, fmt.Errorf("%w: bad magic %#04x", ErrBadHeader, binary.LittleEndian.Uint16(b[0:]))
	}
	if b[2] != headerVersion {
		return Header{}, fmt.Errorf("%w: unsupported version %d", ErrBadHeader, b[2])
	}
	if b[3] != 0 || binary.LittleEndian.Uint32(b[20:]) != 0 {
		return Header{}, fmt.Errorf("%w: reserved bytes are not zero", ErrBadHeader)
	}
	h := Header{
		Flags:   binary.LittleEndian.Uint16(b[4:]),
		TypeLen: int(binary.LittleEndian.Uint16(b[6:])),
		BodyLen: int(binary.LittleEndian.Uint32(b[8:])), // checked below
		Src:     int32(binary.LittleEndian.Uint32(b[12:])),
		Dst:     int32(binary.LittleEndian.Uint32(b[16:])),
		Seq:     binary.LittleEndian.Uint64(b[24:]),
		Time:    int64(binary.LittleEndian.Uint64(b[32:])),
	}
	if h.TypeLen > MaxTypeLen {
		return Header{}, tooLarge("message header: type length %d exceeds %d", h.TypeLen, MaxTypeLen)
	}
	if h.BodyLen < 0 || h.BodyLen > MaxMessageSize-h.TypeLen { // < 0: 32-bit int
		return Header{}, tooLarge("message header: message of %d bytes exceeds the %d MiB limit", h.TypeLen+h.BodyLen, MaxMessageSize>>20)
	}
	return h, nil
}

// DecodeMessage decodes one whole message (header, type, body) from b, which
// must hold exactly that message. into.Body is reused when it has the
// capacity, and into.Type when it already holds the same type, so decoding
// a stream of messages allocates nothing in steady state.
func DecodeMessage(b []byte, into *Message) error {
	h, err := DecodeHeader(b)
	if err != nil {
		return err
	}
	if len(b)-HeaderSize != h.Size() {
		return fmt.Errorf("%w: header says %d bytes follow, have %d", ErrBadHeader, h.Size(), len(b)-HeaderSize)
	}
	h.fill(into, b[HeaderSize:HeaderSize+h.TypeLen], b[HeaderSize+h.TypeLen:])
	return nil
}

// fill copies the header fields, the type and the body into m, reusing m's
// storage where it can.
func (h *Header) fill(m *Message, typ, body []byte) {
	m.Flags, m.Src, m.Dst, m.Seq, m.Time = h.Flags, h.Src, h.Dst, h.Seq, h.Time
	setType(m, typ)
	m.Body = grow(m.Body[:0], len(body))
	copy(m.Body, body)
}

// setType sets m.Type from b without allocating when it is unchanged (the
// comparison of a string with string(b) does not allocate).
func setType(m *Message, b []byte) {
	if len(b) == 0 { // most messages are untyped: no call to compare
		m.Type = ""
		return
	}
	if m.Type != string(b) {
		m.Type = string(b)
	}
}

// grow returns b extended by n bytes, reallocating only when cap is short.
func grow(b []byte, n int) []byte {
	if l := len(b) + n; l <= cap(b) {
		return b[:l]
	}
	nb := make([]byte, len(b)+n)
	copy(nb, b)
	return nb
}
