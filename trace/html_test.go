package trace

import (
	"strings"
	"testing"
)

// An event's fields are listed in key order, so the same events make the
// same page (a Go map's order changes from range to range).
func TestEventInfoFieldsInOrder(t *testing.T) {
	e := &Event{Op: "mark", Fields: map[string]any{"zeta": 1, "alpha": "a", "mid": true, "beta": 2.5}}
	want := eventInfo(e)
	if !strings.HasSuffix(want, "alpha=a, beta=2.5, mid=true, zeta=1") {
		t.Fatalf("eventInfo = %q, want the fields in key order at its end", want)
	}
	for range 20 {
		if got := eventInfo(e); got != want {
			t.Fatalf("eventInfo changed: %q, then %q", want, got)
		}
	}
}
