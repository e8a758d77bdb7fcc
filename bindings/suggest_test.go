package bindings

import "testing"

func TestClosest(t *testing.T) {
	names := []string{"mailbox", "process", "pipe", "receive", "send", "semaphore", "select"}
	for _, tc := range []struct{ typed, want string }{
		{"mailbx", "mailbox"},
		{"recieve", "receive"},  // a swap of neighbours is one edit
		{"Recieve", "receive"},  // case does not matter
		{"proccess", "process"}, // an extra letter
		{"snd", "send"},
		{"sem", ""}, // too far from everything
		{"xyzzy", ""},
	} {
		if got := closest(tc.typed, names); got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.typed, got, tc.want)
		}
	}
}
