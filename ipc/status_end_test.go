package ipc

import (
	"strings"
	"testing"
	"time"
)

// TestStatusEnded: SetEnded wakes a WaitEnded sleeper and Ended reports
// what was recorded, the error cut to fit its area; the other slots and
// their areas are untouched.
func TestStatusEnded(t *testing.T) {
	st, err := NewStatusTable(3)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Region.Close()
	if o := OpenStatusTable(st.Region); o.Len() != 3 {
		t.Fatalf("opened table has %d slots, want 3", o.Len())
	}
	if err := st.WaitEnded(1, time.Now().Add(10*time.Millisecond)); err != ErrTimeout {
		t.Fatalf("WaitEnded before the end: %v, want ErrTimeout", err)
	}
	done := make(chan error)
	go func() { done <- st.WaitEnded(1, time.Time{}) }()
	long := strings.Repeat("e", 1000)
	st.SetEnded(1, -1, 9, long)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ended, code, sig, msg := st.Ended(1)
	if !ended || code != -1 || sig != 9 || msg != long[:epitaphSize-1] {
		t.Fatalf("Ended = %v %d %d %d bytes", ended, code, sig, len(msg))
	}
	st.SetEnded(2, 3, 0, "boom")
	if ended, code, _, msg := st.Ended(2); !ended || code != 3 || msg != "boom" {
		t.Fatalf("slot 2: %v %d %q", ended, code, msg)
	}
	if ended, _, _, _ := st.Ended(0); ended {
		t.Fatal("slot 0 ended without SetEnded")
	}
}
