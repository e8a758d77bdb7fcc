package tests

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ipcscript/ipcscript/runtime"
)

// Every exercise suite in scripts/suites/ passes; its broken twin in
// scripts/suites/broken/ fails with the explanation its "-- fails with:"
// line gives, in every one of 20 runs: the checks judge happens-before,
// not timing, so a broken solution cannot pass by luck.

const suitesDir = "../scripts/suites"

func TestSuitesPass(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(suitesDir, "*_test.lua"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no suites: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			res := runtime.RunTest(context.Background(), f, runtime.Options{})
			if !res.Passed {
				t.Fatalf("%s failed: %s\n%s", f, res.Summary, res.Output)
			}
		})
	}
}

func TestBrokenSuitesFail(t *testing.T) {
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
			want := failsWith(t, f)
			if _, err := os.Stat(filepath.Join(suitesDir, filepath.Base(f))); err != nil {
				t.Errorf("%s has no good twin: %v", f, err)
			}
			caught := 0
			for i := 0; i < runs; i++ {
				res := runtime.RunTest(context.Background(), f, runtime.Options{})
				why := strings.Join(res.Report.Failed, "\n")
				switch {
				case res.Passed:
					t.Errorf("run %d: the broken twin passed", i+1)
				case !want.MatchString(why):
					t.Errorf("run %d: failed, but not with %q: %s\n%s\n%s", i+1, want, res.Summary, why, res.Output)
				default:
					caught++
				}
			}
			t.Logf("%s: caught %d/%d", filepath.Base(f), caught, runs)
			if caught != runs {
				t.Fatalf("caught %d of %d runs", caught, runs)
			}
		})
	}
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
