package runtime

import "unsafe"

// liveHeap returns the bytes of heap marked live by the latest collection:
// the runtime/metrics sample "/gc/heap/live:bytes", read without importing
// runtime/metrics. That package's init builds a description for every
// GODEBUG setting (~95 allocations, ~50 µs), which every process of a run
// would pay at start although only boundHeap reads one figure, once per GC
// cycle. The runtime pushes its implementation of runtime/metrics.Read to
// the name below (a linkname the linker allows), so this is the very call
// runtime/metrics.Read makes; liveHeapSample mirrors metrics.Sample, whose
// layout TestLiveHeapMatchesRuntimeMetrics checks against the real package.
// ok is false if the runtime did not answer with a uint64 (a Go release
// that renamed the metric or changed the layout).
func liveHeap() (live uint64, ok bool) {
	s := [1]liveHeapSample{{name: "/gc/heap/live:bytes"}}
	readMetrics(unsafe.Pointer(&s[0]), len(s), len(s))
	return s[0].scalar, s[0].kind == metricKindUint64
}

// liveHeapSample has the layout of runtime/metrics.Sample: Name, then
// Value{kind, scalar, pointer}.
type liveHeapSample struct {
	name    string
	kind    int
	scalar  uint64
	pointer unsafe.Pointer
}

const metricKindUint64 = 1 // runtime/metrics.KindUint64

//go:linkname readMetrics runtime/metrics.runtime_readMetrics
func readMetrics(samples unsafe.Pointer, len, cap int)
