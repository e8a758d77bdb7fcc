package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// buildC compiles every peers/c/*.c into dir with the system's cc -O2 and
// returns the binaries by name ("pingpong" for pingpong.c), compiling them
// all at once. A NAME_static.c is linked with -static (a floor without the
// dynamic loader); where the C library has no static form it is linked as
// usual, and nonStatic[name] says so.
func buildC(ctx context.Context, cc, srcDir, dir string) (map[string]string, error) {
	srcs, err := filepath.Glob(filepath.Join(srcDir, "*.c"))
	if err != nil || len(srcs) == 0 {
		return nil, fmt.Errorf("no C peers in %s", srcDir)
	}
	bins := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(srcs))
	for i, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := strings.TrimSuffix(filepath.Base(src), ".c")
			out := filepath.Join(dir, name)
			if strings.HasSuffix(name, "_static") {
				s := exec.CommandContext(ctx, cc, "-O2", "-static", "-o", out, src)
				if s.Run() == nil {
					mu.Lock()
					bins[name] = out
					mu.Unlock()
					return
				}
				mu.Lock()
				nonStatic[name] = true
				mu.Unlock()
			}
			c := exec.CommandContext(ctx, cc, "-O2", "-Wall", "-Wextra", "-o", out, src, "-lrt", "-pthread")
			if msg, err := c.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("%s: %v\n%s", strings.Join(c.Args, " "), err, msg)
				return
			}
			mu.Lock()
			bins[name] = out
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return bins, nil
}

// nonStatic lists the *_static peers that could only be linked dynamically.
var nonStatic = map[string]bool{}

// buildIpcscript builds the ipcscript binary from the module at root, as
// the README says to: static, without cgo.
func buildIpcscript(ctx context.Context, root, out string) error {
	return goBuild(ctx, root, out, "./cmd/ipcscript")
}

// buildMinimalGo builds tests/bench/floor/mingo, a Go program whose main
// is empty: the floor under the bare re-exec of ipcscript.
func buildMinimalGo(ctx context.Context, root, out string) error {
	return goBuild(ctx, root, out, "./tests/bench/floor/mingo")
}

func goBuild(ctx context.Context, root, out, pkg string) error {
	c := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	c.Dir = root
	if msg, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v: %s", pkg, err, strings.TrimSpace(string(msg)))
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
