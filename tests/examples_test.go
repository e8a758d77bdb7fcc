package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The examples in every command's --help work: each runs (through sh, in
// a scratch directory that sees the repository's scripts/ and exercises/)
// and exits 0 — or 1 for `test` examples, whose exercises fail until a
// learner fills them in — without a usage error or a missing file.
func TestHelpExamples(t *testing.T) {
	t.Parallel()
	repo, _ := filepath.Abs("..")
	bin := t.TempDir()
	self, _ := os.Executable()
	if err := os.Symlink(self, filepath.Join(bin, "ipcscript")); err != nil {
		t.Fatal(err)
	}
	scratch := func(t *testing.T) string {
		dir := t.TempDir()
		for _, sub := range []string{"scripts", "exercises"} {
			os.Symlink(filepath.Join(repo, sub), filepath.Join(dir, sub))
		}
		return dir
	}
	seen := map[string]bool{}
	for _, command := range []string{"", "run", "check", "test", "trace convert"} {
		help, err := ipcscript(append(strings.Fields(command), "--help")...).Output()
		if err != nil {
			t.Fatalf("%s --help: %v", command, err)
		}
		_, examples, ok := strings.Cut(string(help), "\nExamples:\n")
		if !ok {
			t.Fatalf("ipcscript %s --help has no examples", command)
		}
		examples, _, _ = strings.Cut(examples, "\n\n")
		var lines []string
		for _, line := range strings.Split(examples, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || seen[line] {
				continue
			}
			seen[line] = true
			if strings.Contains(line, "gotestsum") {
				if _, err := exec.LookPath("gotestsum"); err != nil {
					line, _, _ = strings.Cut(line, ";") // the ipcscript half
				}
			}
			lines = append(lines, line)
		}
		// One command's examples run in order in one directory (a later
		// one may read what an earlier one wrote: trace convert run.jsonl);
		// the commands' examples run at the same time.
		t.Run("ipcscript "+command, func(t *testing.T) {
			t.Parallel()
			dir := scratch(t)
			for _, line := range lines {
				cmd := exec.Command("sh", "-c", line)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				cmd.Run()
				code := cmd.ProcessState.ExitCode()
				ok := code == 0 || (code == 1 && strings.HasPrefix(line, "ipcscript test"))
				if !ok || strings.Contains(out.String(), "for usage.") || strings.Contains(out.String(), "cannot read") || strings.Contains(out.String(), "no such file") {
					t.Errorf("example %q: exit %d\n%s", line, code, out.String())
				}
			}
		})
	}
}
