package cli

import (
	"io"
	"os"

	"golang.org/x/term"
)

// progressWanted decides whether a run draws its status line: with
// --progress=auto only when stderr is a terminal (never in a pipe, a file
// or CI), and without colour when NO_COLOR is set (https://no-color.org).
func progressWanted(mode string, stderr io.Writer) (progress, noColor bool) {
	noColor = os.Getenv("NO_COLOR") != ""
	switch mode {
	case "always":
		return true, noColor
	case "never":
		return false, noColor
	}
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || os.Getenv("TERM") == "dumb" {
		return false, true
	}
	return true, noColor
}
