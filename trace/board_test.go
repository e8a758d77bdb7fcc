package trace

import (
	"fmt"
	"testing"
)

// What a run with templates pays for its spawned lanes on each board
// operation: a semaphore's post+wait (Release+Acquire) and a stream's
// write+read, on the board of 3 declared processes alone, on one with the
// K spawned lanes SpawnLanes gives 10 declarations under --max-procs 4000
// before anything spawned (3 lanes in use), and once all K are in use.
func BenchmarkBoardLanes(b *testing.B) {
	k := SpawnLanes(10, 3, 4000)
	for _, c := range []struct{ lanes, inUse int }{{3, 3}, {3 + k, 3}, {3 + k, 3 + k}} {
		board, err := newBoard(10, c.lanes, c.inUse)
		if err != nil {
			b.Fatal(err)
		}
		r := NewRecorder(0, c.inUse, nil, board)
		b.Run(fmt.Sprintf("lanes=%d/inuse=%d/release+acquire", c.lanes, c.inUse), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r.Tick()
				board.Release(1, r)
				board.Acquire(1, r)
			}
		})
		b.Run(fmt.Sprintf("lanes=%d/inuse=%d/write+read", c.lanes, c.inUse), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r.Tick()
				board.StreamWrite(2, r, 1)
				board.StreamRead(2, r, 1)
			}
		})
		board.Close()
	}
}

// Lanes in use: a clock component of a lane the board gave (UseLanes)
// travels through a slot; the board stays within its lanes.
func TestBoardLanesInUse(t *testing.T) {
	board, err := newBoard(2, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer board.Close()
	board.UseLanes(3) // a spawned process, lane 2
	w := NewRecorder(2, 3, nil, board)
	w.Tick()
	w.Tick()
	board.Release(0, w)
	r := NewRecorder(0, 2, nil, board)
	if c, ok := board.Acquire(0, r); !ok || c != (Ref{P: 2, Seq: 2}) || r.Clock().Get(2) != 2 {
		t.Fatalf("acquire: cause %v %v, clock %v; want lane 2's event 2 in it", c, ok, r.Clock())
	}
	if board.Carries(4) || !board.Carries(3) || board.width() != 3 {
		t.Fatalf("carries 3 %v, 4 %v, width %d", board.Carries(3), board.Carries(4), board.width())
	}
}
