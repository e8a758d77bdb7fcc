package trace

import "encoding/binary"

// A datagram's clock. A datagram has no header to flag a clock with, so
// when a traced process sends one to a process of the run it puts the
// clock after the payload: the payload, the sender's index and clock
// (uvarints, as AppendClock), the clock's length (2 bytes, little
// endian), then the run's tag (8 random bytes the supervisor drew for
// the board, little endian). The receiver strips it when it ends with its
// run's tag. Untraced runs, and datagrams to anyone else, are sent as
// they are.

// DatagramTrailer is the most a datagram's clock adds, for n processes.
func DatagramTrailer(n int) int { return 2*binary.MaxVarintLen64 + n*binary.MaxVarintLen64 + 10 }

// AppendDatagramClock appends r's index and current clock, and the run's
// tag, to the datagram b. Without a board (no tag) b is returned as is.
func (r *Recorder) AppendDatagramClock(b []byte) []byte {
	if r.board == nil {
		return b
	}
	at := len(b)
	b = r.AppendClock(b)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(b)-at))
	return binary.LittleEndian.AppendUint64(b, r.board.tag)
}

// SplitDatagram finds the clock at the end of datagram b (one sent by
// AppendDatagramClock in this run): it returns the payload and the clock
// (for AcquireMessage), or b and ok false when b carries none.
func (r *Recorder) SplitDatagram(b []byte) (payload, clock []byte, ok bool) {
	if r == nil || r.board == nil || len(b) < 10 || binary.LittleEndian.Uint64(b[len(b)-8:]) != r.board.tag {
		return b, nil, false
	}
	n := int(binary.LittleEndian.Uint16(b[len(b)-10:]))
	if n > len(b)-10 {
		return b, nil, false
	}
	end := len(b) - 10
	return b[:end-n], b[end-n : end], true
}
