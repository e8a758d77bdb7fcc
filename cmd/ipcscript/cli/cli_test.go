package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// docs/ipcscript.1 is what `ipcscript man` writes: regenerate it with
// `go run ./cmd/ipcscript man > docs/ipcscript.1` after changing a flag or
// a command.
func TestManPageUpToDate(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"man"}, &out, &errb); code != 0 {
		t.Fatalf("man: exit %d: %s", code, errb.String())
	}
	want, err := os.ReadFile("../../../docs/ipcscript.1")
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Fatalf("docs/ipcscript.1 is out of date: run `go run ./cmd/ipcscript man > docs/ipcscript.1`")
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff is not installed: the page was not checked for roff warnings")
	}
	cmd := exec.Command(groff, "-man", "-ww", "-z")
	cmd.Stdin = bytes.NewReader(want)
	if res, err := cmd.CombinedOutput(); err != nil || len(res) > 0 {
		t.Fatalf("groff warns: %v\n%s", err, res)
	}
}

// Every flag of every command appears in its help and in the man page.
func TestEveryFlagDocumented(t *testing.T) {
	var man bytes.Buffer
	Main([]string{"man"}, &man, &man)
	root := newRoot(context.Background(), &bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range root.commands() {
		var help bytes.Buffer
		Main([]string{c.name(), "--help"}, &help, &help)
		c.flagSet().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(help.String(), "--"+f.Name) {
				t.Errorf("%s --help does not list --%s", c.name(), f.Name)
			}
			if f.Name != "help" && !strings.Contains(man.String(), `\-\-`+strings.ReplaceAll(f.Name, "-", `\-`)) {
				t.Errorf("the man page does not list --%s", f.Name)
			}
		})
	}
}
