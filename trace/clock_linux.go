package trace

import _ "unsafe" // go:linkname

// Now is CLOCK_MONOTONIC in nanoseconds, the one clock of every process of
// a run (the same clock as ipc.MonoNow, read through the vDSO without a
// system call: tracing reads it twice per blocking operation).
func Now() int64 { return nanotime() }

//go:linkname nanotime runtime.nanotime
func nanotime() int64
