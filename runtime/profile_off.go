//go:build !cpuprofile

package runtime

import (
	"fmt"
	"os"
)

// startProfile says that this binary cannot profile. runtime/pprof links
// compress/gzip and hash/crc32, whose package initialisation every process
// of a run paid at start (a CRC table: ~13 µs of each bare start) for a
// developer's tool; `go build -tags cpuprofile ./cmd/ipcscript` gives a
// binary that writes the profiles (profile_on.go).
func startProfile(string) (stop func()) {
	if os.Getenv(envCPUProfile) != "" && !IsChild() { // once per run, not per process
		fmt.Fprintf(os.Stderr, "ipcscript: %s is set, but this binary was built without -tags cpuprofile: no profile is written\n", envCPUProfile)
	}
	return func() {}
}
