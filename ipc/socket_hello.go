package ipc

import (
	"crypto/subtle"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A tcp listener of a run is reachable by every local user, so a frame's
// source (m.src) could be forged by anyone who connects. Unless the script
// makes it public, a run's tcp listener takes only connections that open
// with the run's hello: one line, "IPCSCRIPT-RUN <secret>\n", where the
// secret is the run's random token (every process of the run has it in
// IPCSCRIPT_RUN, and no other user can read a run's environment). Accept
// reads the hello before it returns the connection and closes one that
// opens with anything else, or with nothing within HelloWait; what follows
// the hello is the connection's data.

// HelloWait is how long Accept waits for a connection's hello.
const HelloWait = 10 * time.Second

// Hello is the line a connection to a run's private tcp listener sends
// first.
func Hello(secret string) []byte { return []byte("IPCSCRIPT-RUN " + secret + "\n") }

// helloCheck is a listener's requirement: the hello, and the connections
// refused for want of it.
type helloCheck struct {
	hello   []byte
	refused atomic.Int64
}

// RequireHello makes Accept take only connections that open with hello
// (Hello of the run's secret). Only a tcp listener needs one: a unix
// socket is mode 0600 in a private directory, and udp carries no
// connections (a connected udp socket receives only from its peer).
func (l *Listener) RequireHello(hello []byte) {
	if l.kind == "tcp" && len(hello) > 0 {
		l.check = &helloCheck{hello: hello}
	}
}

// Refused counts the connections this process's Accept closed because
// they did not open with the hello.
func (l *Listener) Refused() int64 {
	if l.check == nil {
		return 0
	}
	return l.check.refused.Load()
}

// admit reads the hello from a new connection (nfd, not yet a Stream) and
// reports whether it is the run's.
func (c *helloCheck) admit(nfd int) bool {
	got := make([]byte, len(c.hello))
	n := 0
	deadline := time.Now().Add(HelloWait)
	for n < len(got) {
		left := time.Until(deadline)
		if left <= 0 || PollFd(nfd, unix.POLLIN, WaitOpts{Timeout: left}) != nil {
			return false
		}
		m, _, err := unix.Recvfrom(nfd, got[n:], unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			continue
		case err != nil || m == 0:
			return false
		}
		n += m
	}
	// Compared whole, once: closing at the first wrong byte would tell a
	// prober, byte by byte, how much of the secret it has right.
	return subtle.ConstantTimeCompare(got, c.hello) == 1
}

// SendHello writes hello on a new connection, before anything else.
func (s *Stream) SendHello(hello []byte) error {
	_, err := s.writeBlocking(hello)
	return err
}
