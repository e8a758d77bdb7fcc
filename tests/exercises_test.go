package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestExercises: every exercise of docs/TUTORIAL.md (exercises/NN_topic/)
// has a gapped *_test.lua that fails as given, and a solution.lua that
// passes; both run through `ipcscript test`, as a learner runs them. The
// gapped files run as `ipcscript test exercises/`, the example of
// `ipcscript test --help`.
func TestExercises(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob(filepath.Join("..", "exercises", "[0-9][0-9]_*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no exercises found (%v)", err)
	}
	var gapped, solutions []string
	for _, d := range dirs {
		tests, _ := filepath.Glob(filepath.Join(d, "*_test.lua"))
		if len(tests) != 1 {
			t.Errorf("%s: %d *_test.lua files, want the one gapped exercise", d, len(tests))
			continue
		}
		src, _ := os.ReadFile(tests[0])
		if !strings.Contains(string(src), "TODO") {
			t.Errorf("%s: no TODO marks the gap", tests[0])
		}
		sol := filepath.Join(d, "solution.lua")
		if b, err := os.ReadFile(sol); err != nil {
			t.Errorf("%s: %v", d, err)
			continue
		} else if strings.Contains(string(b), "TODO") {
			t.Errorf("%s: the solution still has a TODO", sol)
		}
		gapped, solutions = append(gapped, tests[0]), append(solutions, sol)
	}

	results := func(t *testing.T, args ...string) map[string]string {
		cmd := ipcscript(append([]string{"test", "--timeout", "120s"}, args...)...)
		out, _ := cmd.CombinedOutput()
		got := map[string]string{}
		for _, m := range regexp.MustCompile(`(?m)^(PASS|FAIL) (\S+)`).FindAllStringSubmatch(string(out), -1) {
			got[filepath.Clean(m[2])] = m[1]
		}
		if len(got) == 0 {
			t.Fatalf("ipcscript test %s: no results\n%s", strings.Join(args, " "), out)
		}
		return got
	}

	t.Run("solutions", func(t *testing.T) {
		t.Parallel()
		got := results(t, solutions...)
		for _, s := range solutions {
			if got[filepath.Clean(s)] != "PASS" {
				t.Errorf("%s: %q, want PASS", s, got[filepath.Clean(s)])
			}
		}
	})
	t.Run("gapped", func(t *testing.T) {
		t.Parallel()
		got := results(t, filepath.Join("..", "exercises")+"/")
		for _, g := range gapped {
			if got[filepath.Clean(g)] != "FAIL" {
				t.Errorf("%s as given: %q, want FAIL (the gap must make it fail)", g, got[filepath.Clean(g)])
			}
		}
		if len(got) != len(gapped) {
			t.Errorf("ipcscript test exercises/ ran %d files, want the %d gapped ones: %v", len(got), len(gapped), got)
		}
	})
}
