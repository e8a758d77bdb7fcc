//go:build cpuprofile

package runtime

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile of this process to
// $IPCSCRIPT_CPUPROFILE.<process name> when that variable is set (go tool
// pprof reads it): the way to see where a script's time goes per process.
// Only in a binary built with -tags cpuprofile: see profile_off.go.
func startProfile(name string) (stop func()) {
	base := os.Getenv(envCPUProfile)
	if base == "" {
		return func() {}
	}
	f, err := os.Create(base + "." + name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ipcscript: %s: %v\n", envCPUProfile, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}
