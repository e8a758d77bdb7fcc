package trace

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// Both ends of a connection name its two directions the same way, and
// two connections differ.
func TestConnKeys(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		addr := "127.0.0.1:0"
		if network == "unix" {
			addr = filepath.Join(t.TempDir(), "s")
		}
		l, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		keys := func() (cw, cr, aw, ar uint64) {
			c, err := net.Dial(network, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cf0, err := c.(interface{ File() (*os.File, error) }).File()
			if err != nil {
				t.Fatal(err)
			}
			defer cf0.Close()
			early, _, _ := ConnKeys(int(cf0.Fd())) // before the accept
			defer func() {
				if early != cw {
					t.Errorf("%s: the connector's key before the accept %x differs from after %x", network, early, cw)
				}
			}()
			a, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			fd := func(x net.Conn) *os.File {
				f, err := x.(interface{ File() (*os.File, error) }).File()
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			cf, af := fd(c), fd(a)
			defer cf.Close()
			defer af.Close()
			var ok1, ok2 bool
			cw, cr, ok1 = ConnKeys(int(cf.Fd()))
			aw, ar, ok2 = ConnKeys(int(af.Fd()))
			if !ok1 || !ok2 {
				t.Fatalf("%s: no keys (%v %v)", network, ok1, ok2)
			}
			return
		}
		cw, cr, aw, ar := keys()
		if cw != ar || cr != aw || cw == cr {
			t.Errorf("%s: connector w=%x r=%x, acceptor w=%x r=%x: want w and r crossed, and different", network, cw, cr, aw, ar)
		}
		cw2, _, _, _ := keys()
		if cw2 == cw {
			t.Errorf("%s: two connections have the same key %x", network, cw)
		}
		l.Close()
	}
}
