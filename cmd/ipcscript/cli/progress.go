package cli

import (
	"io"
	"os"

	"golang.org/x/term"

	"github.com/ipcscript/ipcscript/runtime"
)

// setProgress decides whether a run draws its status line: with
// --progress=auto only when stderr is a terminal (never in a pipe, a file
// or CI), and without colour when NO_COLOR is set (https://no-color.org).
// golang.org/x/term answers "is it a terminal, how wide" (x/sys ioctls we
// would otherwise write ourselves; go-isatty would answer only the first).
func setProgress(o *runtime.Options, mode string, stderr io.Writer) {
	o.NoColor = os.Getenv("NO_COLOR") != ""
	f, isFile := stderr.(*os.File)
	isTerm := isFile && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb"
	switch mode {
	case "always":
		o.Progress = true
	case "never":
		o.Progress = false
	default:
		o.Progress = isTerm
	}
	if isTerm {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			o.ProgressWidth = w
		}
	} else {
		o.NoColor = true
	}
}
