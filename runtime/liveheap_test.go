package runtime

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

// liveHeap mirrors runtime/metrics.Read for one sample: it must read the
// very figure the std package reads, or a Go release changed the layout
// or the name and boundHeap would bound the heap on garbage.
func TestLiveHeapMatchesRuntimeMetrics(t *testing.T) {
	keep := make([][]byte, 0, 64)
	for range 64 {
		keep = append(keep, make([]byte, 64<<10)) // 4 MiB live
	}
	runtime.GC()
	std := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(std)
	got, ok := liveHeap()
	if !ok {
		t.Fatal("liveHeap: the runtime did not answer with a uint64")
	}
	if std[0].Value.Kind() != metrics.KindUint64 {
		t.Fatalf("runtime/metrics: kind %v", std[0].Value.Kind())
	}
	// The live heap changes only at a collection; one may have run
	// between the two reads (the race detector's), so retry once.
	if want := std[0].Value.Uint64(); got != want {
		runtime.GC()
		metrics.Read(std)
		got, _ = liveHeap()
		if want := std[0].Value.Uint64(); got != want {
			t.Fatalf("liveHeap = %d, runtime/metrics = %d", got, want)
		}
	}
	if got < 4<<20 {
		t.Fatalf("liveHeap = %d with 4 MiB kept live", got)
	}
	runtime.KeepAlive(keep)
}
