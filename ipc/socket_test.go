package ipc

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	registerChild("kern-sock-server", kernChildSockServer)
	registerChild("kern-sock-client", kernChildSockClient)
}

func newTestListener(tb testing.TB, kind, address string) *Listener {
	tb.Helper()
	l, err := Listen(kind, address)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// TestSocketServerAndClients: one server process accepts on an inherited
// TCP listener and an inherited unix-socket listener; three TCP client
// processes and a unix-socket client process each get their line echoed.
func TestSocketServerAndClients(t *testing.T) {
	rd := newTestRunDir(t)
	sock, _ := rd.Path("server.sock")
	tl := newTestListener(t, "tcp", "127.0.0.1:0")
	ul := newTestListener(t, "unix", sock)
	if !strings.HasPrefix(tl.Address(), "127.0.0.1:") || strings.HasSuffix(tl.Address(), ":0") {
		t.Fatalf("tcp address %q", tl.Address())
	}
	var st unix.Stat_t
	if err := unix.Lstat(sock, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Mode&0o777 != 0o600 {
		t.Fatalf("%s: mode %o %v", sock, st.Mode, err)
	}
	server := startChild(t, "kern-sock-server", []*os.File{tl.File(), ul.File()}, "3", "1")
	var clients []*testChild
	for i := 0; i < 3; i++ {
		clients = append(clients, startChild(t, "kern-sock-client", nil, "tcp", tl.Address(), fmt.Sprint("tcp client ", i)))
	}
	clients = append(clients, startChild(t, "kern-sock-client", nil, "unix", sock, "unix client"))
	for _, c := range clients {
		c.wait(t)
	}
	server.wait(t)
	out := server.out.String()
	for _, w := range []string{"tcp client 0", "tcp client 1", "tcp client 2", "unix client"} {
		if !strings.Contains(out, "served "+w+"\n") {
			t.Errorf("server did not serve %q:\n%s", w, out)
		}
	}
}

// kernChildSockServer accepts args[0] TCP and args[1] unix connections and
// echoes one line on each.
func kernChildSockServer() {
	tl, err := OpenListener(childFile(0), "tcp")
	if err != nil {
		childFatalf("%v", err)
	}
	ul, err := OpenListener(childFile(1), "unix")
	if err != nil {
		childFatalf("%v", err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	serve := func(l *Listener, n int) {
		defer wg.Done()
		for i := 0; i < n; i++ {
			c, err := l.Accept(WaitOpts{Timeout: 30 * time.Second})
			if err != nil {
				childFatalf("accept on %s: %v", l.Address(), err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				line, err := c.ReadLine(WaitOpts{Timeout: 30 * time.Second})
				if err != nil {
					childFatalf("read: %v", err)
				}
				c.WriteString("echo: "+string(line)+"\n", WaitOpts{Timeout: 30 * time.Second})
				if _, err := c.ReadLine(WaitOpts{Timeout: 30 * time.Second}); err != ErrEOF {
					childFatalf("after the line: %v", err)
				}
				mu.Lock()
				fmt.Printf("served %s\n", line)
				mu.Unlock()
			}()
		}
	}
	var ntcp, nunix int
	fmt.Sscan(childArgs()[0], &ntcp)
	fmt.Sscan(childArgs()[1], &nunix)
	wg.Add(2)
	go serve(tl, ntcp)
	go serve(ul, nunix)
	wg.Wait()
}

func kernChildSockClient() {
	kind, addr, msg := childArgs()[0], childArgs()[1], childArgs()[2]
	c, err := Dial(kind, addr, WaitOpts{Timeout: 30 * time.Second})
	if err != nil {
		childFatalf("%v", err)
	}
	defer c.Close()
	if _, err := c.WriteString(msg+"\n", WaitOpts{Timeout: 30 * time.Second}); err != nil {
		childFatalf("%v", err)
	}
	line, err := c.ReadLine(WaitOpts{Timeout: 30 * time.Second})
	if err != nil || string(line) != "echo: "+msg {
		childFatalf("reply %q %v", line, err)
	}
	if err := c.CloseWrite(); err != nil {
		childFatalf("%v", err)
	}
}

func TestSocketAcceptWaits(t *testing.T) {
	l := newTestListener(t, "tcp", "127.0.0.1:0")
	if _, err := l.Accept(WaitOpts{NonBlocking: true}); err != ErrEmpty {
		t.Fatalf("non-blocking accept with nobody connecting: %v", err)
	}
	if _, err := l.Accept(WaitOpts{Timeout: 20 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("accept with a timeout: %v", err)
	}
	c, err := Dial("tcp", l.Address(), WaitOpts{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept(WaitOpts{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c.WriteString("ping\n", WaitOpts{})
	if line, err := s.ReadLine(WaitOpts{Timeout: 20 * time.Second}); err != nil || string(line) != "ping" {
		t.Fatalf("%q %v", line, err)
	}
	// The supervisor's copy closed, a child's copy (here a second Listener
	// opened from a duplicate descriptor) still accepts.
	f, _ := dupFile(l.File())
	l2, err := OpenListener(f, "tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.Address() != l.Address() {
		t.Fatalf("opened listener says %q, want %q", l2.Address(), l.Address())
	}
	l.Close()
	_, err = l.Accept(WaitOpts{})
	wantErr(t, err, fmt.Sprintf(`tcp listener %q: accept: listener is closed`, l.Address()))
	c2, err := Dial("tcp", l2.Address(), WaitOpts{})
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	s2, err := l2.Accept(WaitOpts{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	f, _ = dupFile(l2.File())
	_, err = OpenListener(f, "udp")
	wantErr(t, err, "is not a udp socket")
	f.Close()
}

func TestSocketDialRefused(t *testing.T) {
	// A port nobody listens on, held for the whole test: bound but not
	// listening, and without SO_REUSEADDR, so that no other test's
	// listener (tests of other packages run at the same time) can take it
	// while the dials below expect a refusal. (A listener's port closed
	// and dialled again was once taken in between.)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	_, err = Dial("tcp", addr, WaitOpts{})
	wantErr(t, err, fmt.Sprintf(`tcp %q: connect: connection refused`, addr))
	if _, err := Dial("tcp", addr, WaitOpts{Timeout: 50 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("dial with a timeout, nobody listening: %v", err)
	}
	_, err = Dial("sctp", addr, WaitOpts{})
	wantErr(t, err, `kind must be "tcp", "unix" or "udp"`)
}

func TestSocketUnixPathRules(t *testing.T) {
	rd := newTestRunDir(t)
	path, _ := rd.Path("s")
	l := newTestListener(t, "unix", path)
	_, err := Listen("unix", path)
	wantErr(t, err, fmt.Sprintf(`unix listener %q: listen:`, path), "address already in use")
	_, err = Listen("unix", "/tmp/"+strings.Repeat("x", 120))
	wantErr(t, err, "longer than a unix socket address may be")
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after Close: %v", err)
	}
}

func TestSocketUDP(t *testing.T) {
	a := newTestListener(t, "udp", "127.0.0.1:0")
	b := newTestListener(t, "udp", "127.0.0.1:0")
	if _, _, err := b.RecvFrom(WaitOpts{NonBlocking: true}); err != ErrEmpty {
		t.Fatalf("non-blocking recvfrom with nothing sent: %v", err)
	}
	if _, _, err := b.RecvFrom(WaitOpts{Timeout: 20 * time.Millisecond}); err != ErrTimeout {
		t.Fatalf("recvfrom with a timeout: %v", err)
	}
	if err := a.SendTo(b.Address(), []byte("ping")); err != nil {
		t.Fatal(err)
	}
	msg, from, err := b.RecvFrom(WaitOpts{Timeout: 20 * time.Second})
	if err != nil || string(msg) != "ping" || from != a.Address() {
		t.Fatalf("got %q from %q (%v), want ping from %s", msg, from, err, a.Address())
	}
	// A connected datagram stream talks to a listener too.
	c, err := Dial("udp", b.Address(), WaitOpts{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteString("hi", WaitOpts{})
	msg, _, err = b.RecvFrom(WaitOpts{Timeout: 20 * time.Second})
	if err != nil || string(msg) != "hi" {
		t.Fatalf("%q %v", msg, err)
	}
	_, err = a.Accept(WaitOpts{})
	wantErr(t, err, "a udp socket has no connections")
	wantErr(t, newTestListener(t, "tcp", "127.0.0.1:0").SendTo(a.Address(), nil), "only a udp socket sends datagrams")
	// A dual-stack socket reaches IPv4 peers.
	d, err := Listen("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SendTo(b.Address(), []byte("v4")); err != nil {
		t.Fatal(err)
	}
	if msg, _, err := b.RecvFrom(WaitOpts{Timeout: 20 * time.Second}); err != nil || string(msg) != "v4" {
		t.Fatalf("%q %v", msg, err)
	}
}

// TestSocketFramedMessages: messages travel on a socket stream as frames
// (frame.go) through Stream.IO, with timeouts.
func TestSocketFramedMessages(t *testing.T) {
	l := newTestListener(t, "unix", t.TempDir()+"/s")
	c, err := Dial("unix", l.Address(), WaitOpts{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept(WaitOpts{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 3; i++ {
		m := Message{Type: "order", Src: 1, Dst: 2, Seq: uint64(i), Body: []byte(strings.Repeat("x", i*40000))}
		if err := WriteFrame(c.IO(WaitOpts{Timeout: 20 * time.Second}), &m); err != nil {
			t.Fatal(err)
		}
		var got Message
		if err := ReadFrame(s.IO(WaitOpts{Timeout: 20 * time.Second}), &got); err != nil {
			t.Fatal(err)
		}
		if got.Type != "order" || got.Seq != uint64(i) || string(got.Body) != string(m.Body) {
			t.Fatalf("frame %d: %s seq %d, %d bytes", i, got.Type, got.Seq, len(got.Body))
		}
	}
	var got Message
	if err := ReadFrame(s.IO(WaitOpts{Timeout: 20 * time.Millisecond}), &got); err != ErrTimeout {
		t.Fatalf("ReadFrame with nothing sent: %v", err)
	}
	c.Close()
	if err := ReadFrame(s.IO(WaitOpts{}), &got); err != ErrEOF {
		t.Fatalf("ReadFrame at the end: %v", err)
	}
}
