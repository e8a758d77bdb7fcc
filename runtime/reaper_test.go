package runtime

import "testing"

// The end-of-run sweep scans /proc only when this process has a child:
// what it kills are its children and their descendants, so with none
// (every child reaped, the usual end) there is nothing to scan for.
func TestSweepRunScansOnlyWithChildren(t *testing.T) {
	defer func(f func() (bool, bool)) { hasChildren = f }(hasChildren)
	for _, c := range []struct {
		has, known bool
		scans      int64
	}{
		{has: false, known: true, scans: 0},
		{has: true, known: true, scans: 1},   // nothing marked: one scan finds no root
		{has: false, known: false, scans: 1}, // the kernel did not say: scan
	} {
		hasChildren = func() (bool, bool) { return c.has, c.known }
		before := procScans.Load()
		if n := sweepRun(newRunToken()); n != 0 {
			t.Errorf("has=%v known=%v: sweepRun killed %d processes of a run that has none", c.has, c.known, n)
		}
		if got := procScans.Load() - before; got != c.scans {
			t.Errorf("has=%v known=%v: %d scans of /proc, want %d", c.has, c.known, got, c.scans)
		}
	}
}
