package ipc

import (
	"testing"

	"golang.org/x/sys/unix"
)

// monoNow is CLOCK_MONOTONIC itself, not an estimate of it: a real
// clock_gettime read between two monoNow reads lies between them, every
// time. (With an offset taken at start it lay outside whenever the process
// had been preempted between the two start reads.)
func TestMonoNowIsClockMonotonic(t *testing.T) {
	for i := 0; i < 10000; i++ {
		a := monoNow()
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			t.Fatal(err)
		}
		b := monoNow()
		if c := ts.Nano(); c < a || c > b {
			t.Fatalf("read %d: clock_gettime %d outside monoNow's [%d, %d]", i, c, a, b)
		}
	}
	if d := MonoNow() - monoNow(); d > 0 {
		t.Fatalf("MonoNow ran %d ns ahead of monoNow", d)
	}
}
