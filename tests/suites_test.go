package tests

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ipcscript/ipcscript/runtime"
)

// Every exercise suite in scripts/suites/ passes; its broken twin in
// scripts/suites/broken/ fails with the explanation its "-- fails with:"
// line gives, in every one of 20 runs: the checks judge happens-before,
// not timing, so a broken solution cannot pass by luck.

const suitesDir = "../scripts/suites"

func TestSuitesPass(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(suitesDir, "*_test.lua"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no suites: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			res := runtime.RunTest(context.Background(), f, runtime.Options{})
			if !res.Passed {
				t.Fatalf("%s failed: %s\n%s", f, res.Summary, res.Output)
			}
		})
	}
}

func TestBrokenSuitesFail(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(suitesDir, "broken", "*_test.lua"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no broken suites: %v", err)
	}
	runs := 20
	if testing.Short() {
		runs = 2
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			want := failsWith(t, f)
			if _, err := os.Stat(filepath.Join(suitesDir, filepath.Base(f))); err != nil {
				t.Errorf("%s has no good twin: %v", f, err)
			}
			var caught atomic.Int32
			parallelRuns(t, runs, func(t *testing.T, i int) {
				res := runtime.RunTest(context.Background(), f, runtime.Options{})
				why := strings.Join(res.Report.Failed, "\n")
				switch {
				case res.Passed:
					t.Errorf("run %d: the broken twin passed", i)
				case !want.MatchString(why):
					t.Errorf("run %d: failed, but not with %q: %s\n%s\n%s", i, want, res.Summary, why, res.Output)
				default:
					caught.Add(1)
				}
			})
			t.Logf("%s: caught %d/%d", filepath.Base(f), caught.Load(), runs)
			if int(caught.Load()) != runs {
				t.Fatalf("caught %d of %d runs", caught.Load(), runs)
			}
		})
	}
}

// parallelRuns calls run(t, i) for i = 1..n, each in a parallel subtest
// ("runs/3"), and returns when all have ended. The runs of a repeated
// check are independent: they need not wait for each other, and the
// machine has cores to spare while a run's processes start and end.
func parallelRuns(t *testing.T, n int, run func(t *testing.T, i int)) {
	t.Helper()
	t.Run("runs", func(t *testing.T) {
		for i := 1; i <= n; i++ {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				run(t, i)
			})
		}
	})
}

// failsWith reads the twin's "-- fails with: REGEXP" line.
func failsWith(t *testing.T, file string) *regexp.Regexp {
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "-- fails with: "); ok {
			return regexp.MustCompile(s)
		}
	}
	t.Fatalf("%s: no \"-- fails with:\" line", file)
	return nil
}
