package cli

import (
	"bytes"
	"strings"
	"testing"
)

// What cobra gave the command line until issue 12, held by its exact
// output then: finding a command among flags, help and version flags,
// argument checks, suggestions, and the completion protocol the scripts
// in completion/ speak.
func TestCommandLineAsCobra(t *testing.T) {
	for _, c := range []struct {
		args           []string
		code           int
		stdout, stderr string // substrings; stdout "=..." is the whole output
	}{
		{[]string{"help", "run", "extra"}, 2, "", "ipcscript: accepts at most 1 arg(s), received 2\nRun 'ipcscript help --help' for usage.\n"},
		{[]string{"version", "extra"}, 2, "", "ipcscript: unknown command \"extra\" for \"ipcscript version\"\nRun 'ipcscript version --help' for usage.\n"},
		{[]string{"--version", "run"}, 0, "=ipcscript " + version + "\n", ""},
		{[]string{"run", "--version"}, 2, "", "unknown flag: --version\nRun 'ipcscript run --help' for usage."},
		{[]string{"-h", "run"}, 0, "\n  ipcscript run [flags] file.lua", ""},
		{[]string{"completion", "nosh"}, 0, "Usage:\n  ipcscript completion\n", ""},
		{[]string{"completion", "bash", "extra"}, 2, "", "unknown command \"extra\" for \"ipcscript completion bash\"\nRun 'ipcscript completion bash --help' for usage."},
		{[]string{"completion", "zsh", "--no-descriptions"}, 0, "${words[1]} __completeNoDesc ${words[2,-1]}", ""},
		{[]string{"mn"}, 66, "", "Did you mean the command 'ipcscript man'?"},
		{[]string{"help", "co"}, 2, "", "Did you mean 'ipcscript help completion'?"},
		{[]string{"__complete"}, 2, "", "requires at least 1 arg(s), only received 0\nRun 'ipcscript __complete --help' for usage."},
		{[]string{"__complete", ""}, 0, "completion\tGenerate the autocompletion script for the specified shell\nhelp\thelp about a command\n", ""},
		{[]string{"__complete", "r"}, 0, "=run\trun a script (the default command)\nlua\n:8\n", "Completion ended with directive: ShellCompDirectiveFilterFileExt\n"},
		{[]string{"__completeNoDesc", "check", "-"}, 0, "=--help\n-h\n--json\n:4\n", ""},
		{[]string{"__complete", "test", "--o"}, 0, "=--output\treport `FORMAT`: text, tap (TAP 14), junit (XML) or json (the go test -json event stream)\n:4\n", ""},
		{[]string{"__complete", "run", "-q", "--"}, 0, "--timeout\t", ""},
		{[]string{"__complete", "help", ""}, 0, "=__complete\ncheck\ncompletion\nhelp\nman\nrun\ntest\ntrace\nversion\n:4\n", ""},
		{[]string{"__complete", "completion", ""}, 0, "zsh\tGenerate the autocompletion script for zsh\n:4\n", ""},
		{[]string{"__complete", "trace", "convert", ""}, 0, "=:0\n", "ShellCompDirectiveDefault"},
		{[]string{"__complete", "x.lua", "-"}, 0, "=:0\n", ""},
		{[]string{"__complete", "--progress", ""}, 0, "=:0\n", ""},
		{[]string{"__complete", "--version", ""}, 0, "=:4\n", ""},
		{[]string{"__complete", "test", "-o", ""}, 0, "=:0\n", ""},
	} {
		var out, errb bytes.Buffer
		code := Main(c.args, &out, &errb)
		name := strings.Join(c.args, " ")
		if code != c.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", name, code, c.code, errb.String())
		}
		if whole, ok := strings.CutPrefix(c.stdout, "="); ok {
			if out.String() != whole {
				t.Errorf("%q: stdout %q, want %q", name, out.String(), whole)
			}
		} else if !strings.Contains(out.String(), c.stdout) {
			t.Errorf("%q: stdout %q does not contain %q", name, out.String(), c.stdout)
		}
		if !strings.Contains(errb.String(), c.stderr) {
			t.Errorf("%q: stderr %q does not contain %q", name, errb.String(), c.stderr)
		}
	}
}
