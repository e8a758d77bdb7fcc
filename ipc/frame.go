package ipc

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// A frame carries one message on a byte stream (a socket):
//
//	offset size field
//	     0    4 length n of what follows (u32, little-endian),
//	            HeaderSize <= n <= MaxFrameSize
//	     4    n the message: header, type, body (message.go)
//
// The length is redundant with the header's lengths and must agree with
// them; it lets a reader reject an oversize frame before reading it.
const (
	framePrefix  = 4
	MaxFrameSize = HeaderSize + MaxMessageSize
)

// smallFrame is the largest frame WriteFrame copies into one buffer so it
// goes out in one write; larger bodies are written after the header
// instead of being copied.
const smallFrame = 64 << 10

var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// WriteFrame writes m as one frame. Small frames are written with a single
// Write call. An oversize message is refused before anything is written.
func WriteFrame(w io.Writer, m *Message) error {
	if err := m.Check(); err != nil {
		return err
	}
	n := m.EncodedLen()
	bp := frameBufs.Get().(*[]byte)
	defer frameBufs.Put(bp)
	whole := framePrefix+n <= smallFrame
	head := framePrefix + HeaderSize + len(m.Type)
	if whole {
		head = framePrefix + n
	}
	b := grow((*bp)[:0], head)
	*bp = b
	binary.LittleEndian.PutUint32(b, uint32(n))
	PutHeader(b[framePrefix:], m)
	k := framePrefix + HeaderSize + copy(b[framePrefix+HeaderSize:], m.Type)
	if whole {
		copy(b[k:], m.Body)
		_, err := w.Write(b)
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	_, err := w.Write(m.Body)
	return err
}

// ReadFrame reads one frame into m, reusing m.Body's storage when it has the
// capacity (and m.Type when unchanged), so a steady stream of frames
// allocates nothing. Wrap unbuffered streams in a bufio.Reader.
//
// It returns ErrEOF when the stream ends cleanly before a frame,
// io.ErrUnexpectedEOF when it ends inside one, and an error wrapping
// ErrTooLarge or ErrBadHeader for a frame it refuses (the stream is then
// out of step and should be closed).
func ReadFrame(r io.Reader, m *Message) error {
	// The prefix, header and type are read into m.Body's storage, which the
	// body overwrites afterwards: no scratch buffer escapes per call.
	const scratch = framePrefix + HeaderSize + MaxTypeLen
	buf := m.Body[:0]
	if cap(buf) < scratch {
		buf = make([]byte, 0, scratch)
	}
	buf = buf[:cap(buf)]
	m.Body = buf[:0]

	if n, err := io.ReadFull(r, buf[:framePrefix]); err != nil {
		if err == io.EOF && n == 0 {
			return ErrEOF
		}
		return unexpected(err)
	}
	n := binary.LittleEndian.Uint32(buf)
	if n < HeaderSize {
		return fmt.Errorf("%w: frame of %d bytes is shorter than a header", ErrBadHeader, n)
	}
	if n > MaxFrameSize {
		return tooLarge("frame: message of %d bytes exceeds the %d MiB limit", n-HeaderSize, MaxMessageSize>>20)
	}
	if _, err := io.ReadFull(r, buf[:HeaderSize]); err != nil {
		return unexpected(err)
	}
	h, err := DecodeHeader(buf[:HeaderSize])
	if err != nil {
		return err
	}
	if h.Size() != int(n)-HeaderSize {
		return fmt.Errorf("%w: frame length %d disagrees with header (%d bytes follow)", ErrBadHeader, n, h.Size())
	}
	tb := buf[HeaderSize : HeaderSize+h.TypeLen]
	if _, err := io.ReadFull(r, tb); err != nil {
		return unexpected(err)
	}
	setType(m, tb)
	m.Flags, m.Src, m.Dst, m.Seq, m.Time = h.Flags, h.Src, h.Dst, h.Seq, h.Time
	m.Body = grow(buf[:0], h.BodyLen)
	if _, err := io.ReadFull(r, m.Body); err != nil {
		m.Body = m.Body[:0]
		return unexpected(err)
	}
	return nil
}

// unexpected maps an EOF inside a frame to io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
