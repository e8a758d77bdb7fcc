package ipc

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// mapped reports whether addr lies in a mapping of this process.
func mapped(t *testing.T, addr uintptr) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		var lo, hi uintptr
		if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil && addr >= lo && addr < hi {
			return true
		}
	}
	return false
}

// Queues made in a Space lie side by side in it, work as any other, and
// the space is unmapped only once the reserver is done and the last of
// them is closed; a queue for which it has no room is mapped on its own.
func TestQueuesInASpace(t *testing.T) {
	size := QueueRegionSize(0)
	space, err := ReserveSpace(2 * size)
	if err != nil {
		t.Fatal(err)
	}
	var qs []*Queue
	for i := range 3 {
		q, err := NewQueue(QueueConfig{Name: fmt.Sprintf("inbox %d", i), Capacity: Unbounded, Space: space})
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
	}
	space.Done()
	base := uintptr(space.base)
	for i, q := range qs[:2] {
		if at := uintptr(unsafe.Pointer(&q.r.Mem[0])); at != base+uintptr(i*size) || q.r.space != space {
			t.Fatalf("queue %d at %#x (space %p), want %#x in the space", i, at, q.r.space, base+uintptr(i*size))
		}
	}
	if qs[2].r.space != nil {
		t.Fatalf("the third queue is in the space, which has room for two")
	}
	for i, q := range qs {
		mustSend(t, q, &Message{Type: "t", Body: []byte{byte(i)}})
		// The memfd, mapped again (as a child maps it), holds what was sent.
		f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", q.File().Fd()), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		o, err := OpenQueue(f, QueueConfig{Name: "again"})
		if err != nil {
			t.Fatal(err)
		}
		if got := mustReceive(t, o, Filter{}); got.Type != "t" || len(got.Body) != 1 || got.Body[0] != byte(i) {
			t.Fatalf("queue %d: received %+v", i, got)
		}
		o.Close()
	}
	qs[0].Close()
	if !mapped(t, base) || !mapped(t, base+uintptr(size)) {
		t.Fatal("the space was unmapped while a queue in it was open")
	}
	qs[1].Close()
	qs[2].Close()
	if mapped(t, base) || mapped(t, base+uintptr(size)) {
		t.Fatal("the space is still mapped after its last queue closed")
	}
}
