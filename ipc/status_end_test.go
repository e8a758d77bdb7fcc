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

// TestStatusReuse: a slot given to a new process (Assign) says the new one
// runs, and the old one is told apart by its serial: ended, its record
// gone (reused), and a wait for it returns at once.
func TestStatusReuse(t *testing.T) {
	st, err := NewStatusTable(2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Region.Close()
	st.Assign(1, 5)
	st.SetEnded(1, 0, 0, "")
	if ended, _, _, _, reused := st.EndedOf(1, 5); !ended || reused {
		t.Fatalf("serial 5 after its end: ended %v reused %v", ended, reused)
	}
	st.Assign(1, 9)
	if ended, _, _, _ := st.Ended(1); ended {
		t.Fatal("the slot's new process counts as ended")
	}
	if ended, _, _, _, reused := st.EndedOf(1, 5); !ended || !reused {
		t.Fatalf("serial 5 after reuse: ended %v reused %v", ended, reused)
	}
	if err := st.WaitEndedOf(1, 5, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := st.WaitEndedOf(1, 9, time.Now().Add(10*time.Millisecond)); err != ErrTimeout {
		t.Fatalf("wait for the running serial 9: %v, want ErrTimeout", err)
	}
	st.SetEnded(1, 2, 0, "x")
	if ended, code, _, msg, reused := st.EndedOf(1, 9); !ended || reused || code != 2 || msg != "x" {
		t.Fatalf("serial 9: %v %d %q %v", ended, code, msg, reused)
	}
}
