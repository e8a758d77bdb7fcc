package ipc

import (
	"bytes"
	"testing"
)

// Shm.ReadInto copies exactly the bytes asked for, whatever the length and
// offset (copyLarge's REP MOVSB from 4096 bytes on amd64, copy below),
// and nothing past them.
func TestShmReadIntoCopies(t *testing.T) {
	m, err := NewShm("m", 1<<17)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	src := make([]byte, 1<<17)
	for i := range src {
		src[i] = byte(i*7 + i>>8)
	}
	if err := m.Write(0, src); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ off, n int }{{0, 0}, {1, 1}, {3, 4095}, {0, 4096}, {5, 4097}, {64, 65536}, {1, 65537}, {0, 1 << 17}} {
		p := bytes.Repeat([]byte{0xAA}, c.n+16)
		if err := m.ReadInto(c.off, p[:c.n]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p[:c.n], src[c.off:c.off+c.n]) {
			t.Fatalf("ReadInto(%d, %d bytes): wrong bytes", c.off, c.n)
		}
		if !bytes.Equal(p[c.n:], bytes.Repeat([]byte{0xAA}, 16)) {
			t.Fatalf("ReadInto(%d, %d bytes) wrote past its slice", c.off, c.n)
		}
	}
	if err := m.ReadInto(1<<17-10, make([]byte, 11)); err == nil {
		t.Fatal("a read past the end: no error")
	}
}
