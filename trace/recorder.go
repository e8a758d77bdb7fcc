package trace

import (
	"encoding/binary"
	"errors"
)

// Recorder records one process's events into its Buffer and keeps its
// vector clock. A nil *Recorder records nothing: callers test `rec != nil`
// once per operation, the whole cost of tracing when it is off.
//
// A Recorder is used by one goroutine (the process's Lua state).
type Recorder struct {
	P     int // this process's index
	buf   *Buffer
	board *Board
	vc    VC
	rec   []byte
	last  repeats // the string fields of the last records in buf
}

// NewRecorder makes the recorder of process p among n processes. start is
// the clock the process begins with (nil: zero).
func NewRecorder(p, n int, buf *Buffer, board *Board) *Recorder {
	if n <= p {
		n = p + 1
	}
	return &Recorder{P: p, buf: buf, board: board, vc: make(VC, n), rec: make([]byte, 0, 256)}
}

// Board is the run's clock board (nil when there is none).
func (r *Recorder) Board() *Board { return r.board }

// Clock is the live clock (read only; it changes with the next event).
func (r *Recorder) Clock() VC { return r.vc }

// Seq is the sequence number of this process's latest event.
func (r *Recorder) Seq() uint64 { return r.vc[r.P] }

// Tick begins a new event and returns its sequence number. Use it when the
// clock must travel before the event is complete (a send puts it in the
// message, then blocks); Emit writes the event afterwards.
func (r *Recorder) Tick() uint64 {
	r.vc[r.P]++
	return r.vc[r.P]
}

// Emit writes e as the current event (the one the last Tick began), with
// the current clock.
func (r *Recorder) Emit(e *Event) {
	e.Seq = r.vc[r.P]
	e.VC = r.vc
	r.rec = appendRecord(r.rec[:0], r.P, e, &r.last)
	e.VC = nil
	if r.buf.Append(r.rec) {
		r.last.pub = r.last.pending
	} else { // dropped: the next record must repeat nothing
		r.last.forget()
	}
}

// Record ticks and writes e: an event that carries nothing to anyone.
func (r *Recorder) Record(e *Event) {
	r.Tick()
	r.Emit(e)
}

// Acquire merges a clock picked up from elsewhere into this process's.
func (r *Recorder) Acquire(vc VC) {
	for i, x := range vc {
		if i < len(r.vc) {
			if x > r.vc[i] {
				r.vc[i] = x
			}
		} else {
			r.vc = append(r.vc, x)
		}
	}
}

// A message's clock: when a traced process sends, the body is prefixed by
// the sender's index and clock (uvarints: p, n, n components) and the
// header's FlagClock bit is set; the receiver strips the prefix.

// FlagClock is the ipc.Message flag saying the body starts with a clock.
const FlagClock = 1 << 15

// FlagReceipt is the ipc.Message flag of a rendezvous send: the receiver
// leaves its clock for the sender (Board.Receipt) once it took it.
const FlagReceipt = 1 << 14

// AppendClock appends this process's index and current clock to b.
func (r *Recorder) AppendClock(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(r.P))
	b = binary.AppendUvarint(b, uint64(len(r.vc)))
	for _, x := range r.vc {
		b = binary.AppendUvarint(b, x)
	}
	return b
}

var errClock = errors.New("trace: malformed message clock")

// AcquireMessage merges the clock at the start of body (put there by
// AppendClock) and returns the sending event and the body after the clock.
// A nil receiver still strips the clock.
func (r *Recorder) AcquireMessage(body []byte) (cause Ref, rest []byte, err error) {
	p, i := getUvarint(body, 0)
	if i < 0 {
		return Ref{}, body, errClock
	}
	k, i := getUvarint(body, i)
	if i < 0 || k > uint64(len(body)-i) {
		return Ref{}, body, errClock
	}
	for c := 0; c < int(k); c++ {
		var x uint64
		if i+3 <= len(body) { // up to 21 bits (most components of most clocks), unrolled
			x = uint64(body[i])
			if x < 0x80 {
				i++
			} else if c := uint64(body[i+1]); c < 0x80 {
				x = x&0x7f | c<<7
				i += 2
			} else if d := uint64(body[i+2]); d < 0x80 {
				x = x&0x7f | (c&0x7f)<<7 | d<<14
				i += 3
			} else if x, i = getUvarint(body, i); i < 0 {
				return Ref{}, body, errClock
			}
		} else if x, i = getUvarint(body, i); i < 0 {
			return Ref{}, body, errClock
		}
		if c == int(p) {
			cause = Ref{P: int(p), Seq: x}
		}
		if r == nil {
			continue
		}
		if c < len(r.vc) {
			if x > r.vc[c] {
				r.vc[c] = x
			}
		} else {
			r.vc = append(r.vc, x)
		}
	}
	return cause, body[i:], nil
}

// getUvarint reads the uvarint at b[i:]: its value and the index after
// it, or i < 0 when there is none (binary.Uvarint's failures).
func getUvarint(b []byte, i int) (uint64, int) {
	var x uint64
	var s uint
	for n := 0; i < len(b); n++ {
		c := b[i]
		i++
		if n == binary.MaxVarintLen64 {
			return 0, -1
		}
		if c < 0x80 {
			if n == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -1
			}
			return x | uint64(c)<<s, i
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, -1
}

// SkipClock returns body without the clock prefix (for a receiver that is
// not tracing: a message from a traced sender).
func SkipClock(body []byte) []byte {
	_, rest, err := (*Recorder)(nil).AcquireMessage(body)
	if err != nil {
		return body
	}
	return rest
}

// Resume sets the clock from the buffer's last record: a process whose
// buffer already holds its spawn event continues after it.
func (r *Recorder) Resume() {
	d := decoder{in: interner{}}
	var vc VC
	r.buf.Records(func(rec []byte) error { // in order: a record may say what changed since the last
		e := Event{P: r.P}
		if err := d.decode(rec, &e); err != nil {
			return err
		}
		vc = e.VC
		return nil
	})
	r.Acquire(vc)
	r.last.pub = d.prevMask // the next record's mask is XORed with the last one's
}
