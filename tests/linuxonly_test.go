package tests

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A build for another system stops with one message, not the dozens of
// "undefined" errors of the Linux-only files (internal/linuxonly).
func TestOtherSystemBuildSaysLinuxOnly(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build with")
	}
	cmd := exec.Command(goTool, "build", "./...")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOOS=darwin", "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("GOOS=darwin go build ./... succeeded:\n%s", out)
	}
	var errs []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "#") {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], `"ipcscript runs on Linux only"`) {
		t.Fatalf("want one error saying ipcscript runs on Linux only, got %d:\n%s", len(errs), out)
	}
}
