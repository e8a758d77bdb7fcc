package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// TestResult is the outcome of one exercise script (`*_test.lua`).
type TestResult struct {
	File    string  `json:"file"`
	Passed  bool    `json:"passed"`
	Summary string  `json:"summary,omitempty"` // why it failed
	Output  string  `json:"output,omitempty"`  // what its processes printed (stdout then stderr)
	Elapsed float64 `json:"elapsed"`
	Report  *Report `json:"report"`
}

// FindTests expands paths into exercise scripts: a file is taken as given;
// a directory is searched recursively for files named *_test.lua. No path
// means the current directory.
func FindTests(paths []string) ([]string, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(d.Name(), "_test.lua") {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	return files, nil
}

// RunTest runs one exercise script. It passes when its run is ok: every
// process exited 0, no expectation failed, and no deadlock or timeout
// happened that the script did not declare as expected. A test without a
// timeout of its own gets opts.Timeout, or 60 s.
func RunTest(ctx context.Context, file string, opts Options) TestResult {
	var out bytes.Buffer
	opts.Stdout, opts.Stderr = &out, &out
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	start := time.Now()
	rep, err := RunFile(ctx, file, opts)
	res := TestResult{File: file, Elapsed: time.Since(start).Seconds(), Report: rep, Output: out.String()}
	switch {
	case err != nil:
		res.Summary = err.Error()
	case rep.OK:
		res.Passed = true
	default:
		res.Summary = rep.Summary()
		if len(rep.Failed) > 0 {
			// The first line of each: a check's explanation goes on with
			// its events and window, which the output shows in full.
			first := make([]string, len(rep.Failed))
			for i, f := range rep.Failed {
				first[i], _, _ = strings.Cut(f, "\n")
			}
			res.Summary += fmt.Sprintf(" (expectation failed: %s)", strings.Join(first, "; "))
		}
	}
	return res
}
