package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildC compiles every peers/c/*.c into dir with the system's cc -O2 and
// returns the binaries by name ("pingpong" for pingpong.c).
func buildC(ctx context.Context, cc, srcDir, dir string) (map[string]string, error) {
	srcs, err := filepath.Glob(filepath.Join(srcDir, "*.c"))
	if err != nil || len(srcs) == 0 {
		return nil, fmt.Errorf("no C peers in %s", srcDir)
	}
	bins := map[string]string{}
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".c")
		out := filepath.Join(dir, name)
		c := exec.CommandContext(ctx, cc, "-O2", "-Wall", "-Wextra", "-o", out, src, "-lrt", "-pthread")
		if msg, err := c.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %v\n%s", strings.Join(c.Args, " "), err, msg)
		}
		bins[name] = out
	}
	return bins, nil
}

// buildIpcscript builds the ipcscript binary from the module at root.
func buildIpcscript(ctx context.Context, root, out string) error {
	c := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/ipcscript")
	c.Dir = root
	if msg, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/ipcscript: %v: %s", err, strings.TrimSpace(string(msg)))
	}
	return nil
}

// moduleRoot finds the directory of this module's go.mod from the working
// directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/ipcscript/ipcscript\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run from inside the ipcscript module (no go.mod of github.com/ipcscript/ipcscript above the working directory), or pass --root")
		}
		dir = parent
	}
}
