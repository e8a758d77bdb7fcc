package ipc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Listener is a bound socket that processes of a run share: a listening
// "tcp" or "unix" stream socket that accepts connections, or a bound "udp"
// socket that sends and receives datagrams. It holds the socket as an
// *os.File so it can be handed to children (File) and opened there
// (OpenListener); any of them may accept.
//
// The descriptor is non-blocking and registered with Go's poller in every
// process that uses it (as package net would have it), so Accept and
// RecvFrom wait without holding a thread and take timeouts.
type Listener struct {
	kind    string // "tcp", "unix", "udp"
	address string // the real address: a port 0 replaced, a unix path
	f       *os.File
	rc      syscall.RawConn
	fd      int
	domain  int  // AF_INET, AF_INET6, AF_UNIX
	created bool // this Listener made the unix socket file (Close removes it)
	closed  atomic.Bool
	rdl     time.Time
	udpBuf  []byte
	lastTo  string        // SendTo's last address, resolved:
	lastSa  unix.Sockaddr // a reply loop resolves once
	ws      *WaitStatus
	id      int32
	check   *helloCheck // nil: any connection is taken (socket_hello.go)
}

// Listen binds a socket of kind "tcp", "unix" or "udp" at address. For tcp
// and udp, address is "host:port" and port 0 picks a free port (Address
// says which); for unix it is a path the caller chose (in the run
// directory), created exclusively (bind fails if anything exists there)
// with mode 0600.
func Listen(kind, address string) (*Listener, error) {
	l := &Listener{kind: kind, address: address, id: -1}
	var c syscall.Conn
	switch kind {
	case "tcp":
		ln, err := net.Listen("tcp", address)
		if err != nil {
			return nil, l.errorf("listen", "%v", unwrapNet(err))
		}
		defer ln.Close()
		c, l.address = ln.(*net.TCPListener), ln.Addr().String()
	case "unix":
		if len(address) > len(unix.RawSockaddrUnix{}.Path)-1 {
			return nil, l.errorf("listen", "path is %d bytes, longer than a unix socket address may be (%d)", len(address), len(unix.RawSockaddrUnix{}.Path)-1)
		}
		ln, err := listenUnixPrivate(address)
		if err != nil {
			return nil, l.errorf("listen", "%v", err)
		}
		defer ln.Close()
		c, l.created = ln, true
	case "udp":
		pc, err := net.ListenPacket("udp", address)
		if err != nil {
			return nil, l.errorf("listen", "%v", unwrapNet(err))
		}
		defer pc.Close()
		c, l.address = pc.(*net.UDPConn), pc.LocalAddr().String()
	default:
		return nil, fmt.Errorf("listen %q: kind must be \"tcp\", \"unix\" or \"udp\"", kind)
	}
	f, err := detachFile(c, kind+":"+l.address, false)
	if err == nil {
		err = l.init(f)
	}
	if err != nil {
		if l.created {
			os.Remove(address)
		}
		return nil, l.errorf("listen", "%v", err)
	}
	return l, nil
}

// OpenListener wraps an inherited listener descriptor of the given kind.
// The Listener owns f from then on.
func OpenListener(f *os.File, kind string) (*Listener, error) {
	l := &Listener{kind: kind, id: -1}
	if f == nil {
		return nil, l.errorf("open", "no descriptor")
	}
	var wantType int
	switch kind {
	case "tcp", "unix":
		wantType = unix.SOCK_STREAM
	case "udp":
		wantType = unix.SOCK_DGRAM
	default:
		return nil, fmt.Errorf("listener %q: kind must be \"tcp\", \"unix\" or \"udp\"", kind)
	}
	pf, err := pollableFile(f)
	if err != nil {
		return nil, l.errorf("open", "%v", err)
	}
	if err := l.init(pf); err != nil {
		pf.Close()
		return nil, l.errorf("open", "%v", err)
	}
	var typ int
	var sa unix.Sockaddr
	var serr error
	l.rc.Control(func(fd uintptr) {
		if typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE); serr != nil {
			return
		}
		sa, serr = unix.Getsockname(int(fd))
	})
	if serr == nil && (typ != wantType || (kind == "unix") != (l.domain == unix.AF_UNIX)) {
		serr = fmt.Errorf("descriptor %s is not a %s socket", f.Name(), kind)
	}
	if serr != nil {
		pf.Close()
		return nil, l.errorf("open", "%v", serr)
	}
	l.address = sockaddrString(sa)
	return l, nil
}

// SetPath says where an inherited unix listener's file is: the socket was
// bound at a private name and renamed (listenUnixPrivate), so the name the
// kernel reports is not where clients connect.
func (l *Listener) SetPath(path string) {
	if l.kind == "unix" {
		l.address = path
	}
}

func (l *Listener) init(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	l.f, l.rc = f, rc
	rc.Control(func(fd uintptr) {
		l.fd = int(fd)
		l.domain, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	})
	return err
}

func (l *Listener) errorf(op, format string, args ...any) error {
	return fmt.Errorf("%s listener %q: %s: %s", l.kind, l.address, op, fmt.Sprintf(format, args...))
}

// SetStatus makes the listener record its blocking waits in ws under the
// given object id (nil: don't record).
func (l *Listener) SetStatus(ws *WaitStatus, object int32) { l.ws, l.id = ws, object }

// Kind is "tcp", "unix" or "udp"; Address the bound address ("127.0.0.1:41234",
// a path).
func (l *Listener) Kind() string    { return l.kind }
func (l *Listener) Address() string { return l.address }

// File is the descriptor to hand to a child through ExtraFiles.
func (l *Listener) File() *os.File { return l.f }

// Fd is the descriptor number, for poll(2) in select (readable: a
// connection to accept, or a datagram).
func (l *Listener) Fd() int { return l.fd }

// Close closes this process's descriptor. The Listener that created a unix
// socket also removes its path, so the process that calls Listen (the
// supervisor) keeps it open until the run ends.
func (l *Listener) Close() error {
	l.closed.Store(true)
	err := l.f.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	if l.created {
		var st unix.Stat_t
		if unix.Lstat(l.address, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			if rerr := os.Remove(l.address); err == nil {
				err = rerr
			}
		}
	}
	if err != nil {
		return l.errorf("close", "%v", err)
	}
	return nil
}

// Accept waits for a connection and returns it as a Stream: ErrEmpty at once
// with NonBlocking when none is pending, ErrTimeout when o.Timeout passes
// first.
func (l *Listener) Accept(o WaitOpts) (*Stream, error) {
	if l.kind == "udp" {
		return nil, l.errorf("accept", "a udp socket has no connections: use recvfrom")
	}
	var nfd int
	var errno error
	accept := func(fd uintptr) {
		for {
			nfd, _, errno = unix.Accept4(int(fd), unix.SOCK_CLOEXEC)
			// A connection reset before it was accepted is not ours to
			// report: take the next one.
			if errno != unix.EINTR && errno != unix.ECONNABORTED {
				return
			}
		}
	}
	deadline := o.Deadline()
	for {
		if err := l.wait("accept", OpAccept, o, accept, &errno); err != nil {
			return nil, err
		}
		if errno != nil {
			return nil, l.errorf("accept", "%v", errno)
		}
		if l.check == nil || l.check.admit(nfd) {
			break
		}
		unix.Close(nfd) // not the run's: the next connection, in the time left
		l.check.refused.Add(1)
		if !deadline.IsZero() {
			if o.Timeout = time.Until(deadline); o.Timeout <= 0 {
				return nil, ErrTimeout
			}
		}
	}
	if l.kind == "tcp" {
		unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	l.ws.Done()
	f, err := ownedFile(nfd, l.kind+":"+l.address)
	if err != nil {
		return nil, l.errorf("accept", "%v", err)
	}
	return newOwnedStream(l.kind, l.address, f)
}

// wait runs try (one non-blocking system call that sets *errno) until it
// does not say EAGAIN, waiting for readability as o says.
func (l *Listener) wait(op string, statusOp uint32, o WaitOpts, try func(fd uintptr), errno *error) error {
	if o.NonBlocking {
		if err := l.rc.Control(try); err != nil {
			return l.closedError(op, err)
		}
		if *errno == unix.EAGAIN {
			return ErrEmpty
		}
		return nil
	}
	deadline := o.Deadline()
	if !deadline.Equal(l.rdl) {
		if err := l.f.SetReadDeadline(deadline); err != nil {
			return l.closedError(op, err)
		}
		l.rdl = deadline
	}
	entered := false
	err := l.rc.Read(func(fd uintptr) bool {
		try(fd)
		if *errno == unix.EAGAIN {
			if !entered {
				entered = true
				l.ws.Enter(statusOp, l.id, -1, !deadline.IsZero())
			}
			return false
		}
		return true
	})
	if entered {
		l.ws.Leave()
	}
	if err != nil {
		return l.closedError(op, err)
	}
	return nil
}

func (l *Listener) closedError(op string, err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	case l.closed.Load() || errors.Is(err, os.ErrClosed):
		return l.errorf(op, "listener is closed")
	}
	return l.errorf(op, "%v", err)
}

// MaxDatagram is the largest datagram RecvFrom returns whole.
const MaxDatagram = 65507

// SendTo sends b as one datagram to address ("host:port") from a udp
// listener.
func (l *Listener) SendTo(address string, b []byte) error {
	if l.kind != "udp" {
		return l.errorf("sendto", "only a udp socket sends datagrams")
	}
	sa := l.lastSa
	if address != l.lastTo || sa == nil {
		ua, err := net.ResolveUDPAddr("udp", address)
		if err != nil {
			return l.errorf("sendto", "%v", unwrapNet(err))
		}
		if sa, err = udpSockaddr(ua, l.domain); err != nil {
			return l.errorf("sendto", "%v", err)
		}
		l.lastTo, l.lastSa = address, sa
	}
	var errno error
	if err := l.rc.Write(func(fd uintptr) bool {
		for {
			errno = unix.Sendto(int(fd), b, 0, sa)
			if errno != unix.EINTR {
				return errno != unix.EAGAIN
			}
		}
	}); err != nil {
		return l.closedError("sendto", err)
	}
	if errno != nil {
		return l.errorf("sendto", "%s: %v", address, errno)
	}
	l.ws.Done()
	return nil
}

// RecvFrom waits for a datagram on a udp listener and returns it with the
// sender's address: ErrEmpty at once with NonBlocking when none is there,
// ErrTimeout when o.Timeout passes first.
func (l *Listener) RecvFrom(o WaitOpts) ([]byte, string, error) {
	if l.kind != "udp" {
		return nil, "", l.errorf("recvfrom", "only a udp socket receives datagrams: use accept")
	}
	if l.udpBuf == nil {
		l.udpBuf = make([]byte, MaxDatagram)
	}
	var n int
	var from unix.Sockaddr
	var errno error
	recv := func(fd uintptr) {
		for {
			n, from, errno = unix.Recvfrom(int(fd), l.udpBuf, 0)
			if errno != unix.EINTR {
				return
			}
		}
	}
	if err := l.wait("recvfrom", OpReceive, o, recv, &errno); err != nil {
		return nil, "", err
	}
	if errno != nil {
		return nil, "", l.errorf("recvfrom", "%v", errno)
	}
	out := make([]byte, n)
	copy(out, l.udpBuf[:n])
	l.ws.Done()
	return out, sockaddrString(from), nil
}

// Dial connects to a listener of kind "tcp", "unix" or "udp" (a connected
// datagram socket) at address. A connection refused (nothing listens yet)
// is retried until o's deadline when o has a Timeout; without one Dial fails
// at once rather than wait for a server that may never come.
func Dial(kind, address string, o WaitOpts) (*Stream, error) {
	errorf := func(format string, args ...any) error {
		return fmt.Errorf("%s %q: connect: %s", kind, address, fmt.Sprintf(format, args...))
	}
	switch kind {
	case "tcp", "unix", "udp":
	default:
		return nil, fmt.Errorf("connect %q: kind must be \"tcp\", \"unix\" or \"udp\"", kind)
	}
	deadline := o.Deadline()
	pause := time.Millisecond
	for {
		d := net.Dialer{Deadline: deadline}
		c, err := d.Dial(kind, address)
		if err == nil {
			f, err := detachFile(c.(syscall.Conn), kind+":"+address, true)
			c.Close()
			if err != nil {
				return nil, errorf("%v", err)
			}
			return newOwnedStream(kind, address, f)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, ErrTimeout
		}
		err = unwrapNet(err)
		retry := errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOENT)
		if !retry || deadline.IsZero() || !time.Now().Add(pause).Before(deadline) {
			if retry && !deadline.IsZero() {
				return nil, ErrTimeout
			}
			return nil, errorf("%v", err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// detachFile returns a descriptor of its own for the socket behind c
// (package net's is closed right after): blocking for a connection's
// Stream, or else non-blocking and pollable, a listener's, whose Fd method
// leaves it non-blocking (the File that package net returns turns
// blocking on Fd, which happens when it is handed to a child).
func detachFile(c syscall.Conn, name string, blocking bool) (*os.File, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var ferr error
	if err := rc.Control(func(fd uintptr) { nfd, ferr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if ferr != nil {
		return nil, os.NewSyscallError("dup", ferr)
	}
	if blocking {
		return ownedFile(nfd, name)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(nfd), name), nil
}

// pollableFile returns f, or a replacement for it, whose descriptor is
// non-blocking and registered with the poller (a listener waits for
// connections in Go's poller; its connections are blocking Streams). A descriptor inherited
// through ExtraFiles arrives in blocking mode and O_NONBLOCK belongs to the
// open file, shared with every process that inherited it, so for a pipe or
// FIFO this opens a new open file on the same pipe through /proc/self/fd:
// setting O_NONBLOCK there leaves the others (an exec'd program reading
// its stdin, say) as they were. Other descriptors (sockets) are switched
// to non-blocking mode in place, as the net package does.
func pollableFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var flags int
	var ferr error
	rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) })
	if ferr != nil {
		return nil, os.NewSyscallError("fcntl", ferr)
	}
	if flags&unix.O_NONBLOCK != 0 && f.SetReadDeadline(time.Time{}) == nil {
		return f, nil // already pollable
	}
	nfd := -1
	rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
			nfd, ferr = unix.Open("/proc/self/fd/"+strconv.Itoa(int(fd)), flags&unix.O_ACCMODE|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if ferr == nil {
				return
			}
		}
		if nfd, ferr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); ferr == nil {
			if ferr = unix.SetNonblock(nfd, true); ferr != nil {
				unix.Close(nfd)
			}
		}
	})
	if ferr != nil {
		return nil, os.NewSyscallError("reopen", ferr)
	}
	name := f.Name()
	f.Close()
	return os.NewFile(uintptr(nfd), name), nil
}

// unwrapNet drops the *net.OpError decoration (which repeats the address
// our own message already names) down to the system error.
func unwrapNet(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err
	}
	return err
}

// udpSockaddr converts a to a socket address for a socket of domain (an
// AF_INET6 socket reaches IPv4 peers through v4-mapped addresses).
func udpSockaddr(a *net.UDPAddr, domain int) (unix.Sockaddr, error) {
	if ip4 := a.IP.To4(); ip4 != nil && domain == unix.AF_INET {
		sa := &unix.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], ip4)
		return sa, nil
	}
	if ip6 := a.IP.To16(); ip6 != nil {
		sa := &unix.SockaddrInet6{Port: a.Port}
		copy(sa.Addr[:], ip6)
		return sa, nil
	}
	return nil, fmt.Errorf("address %v is not an IP address", a)
}

// sockaddrString formats a socket address as "ip:port" or a unix path.
func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *unix.SockaddrInet6:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *unix.SockaddrUnix:
		return a.Name
	}
	return ""
}
