package ipc

import (
	"errors"
	"time"
)

// The outcomes a script is expected to handle. Their Error() strings are the
// exact strings the Lua API returns ("timeout", "empty", ...).
var (
	ErrTimeout = errors.New("timeout")
	ErrEmpty   = errors.New("empty")
	ErrFull    = errors.New("full")
	ErrClosed  = errors.New("closed")
	ErrEOF     = errors.New("eof")
	// ErrInvalid: a message arrived whole from outside the run but its
	// body cannot be decoded; the next message can still be received.
	ErrInvalid = errors.New("invalid")
)

// WaitOpts says how a blocking call waits. The zero value blocks forever.
type WaitOpts struct {
	NonBlocking bool          // return ErrEmpty / ErrFull at once instead of waiting
	Timeout     time.Duration // > 0: give up with ErrTimeout after this long
}

// Deadline returns the absolute deadline for opts, or the zero Time.
func (o WaitOpts) Deadline() time.Time {
	if o.Timeout > 0 {
		return time.Now().Add(o.Timeout)
	}
	return time.Time{}
}

// MonoNow is CLOCK_MONOTONIC in nanoseconds: one clock for every process of
// a run, so send and receive times can be compared across processes.
func MonoNow() int64 { return monoNow() }
