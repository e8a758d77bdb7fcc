package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/ipcscript/ipcscript/runtime"
	"github.com/ipcscript/ipcscript/trace"
)

const traceUsage = `Usage:
  ipcscript trace convert [--trace-limit N] IN.jsonl OUT.{jsonl,json,shiviz,mmd,html}

Converts a recorded run (the canonical .jsonl written by --trace) into a view,
chosen by OUT's extension: .json Chrome/Perfetto trace, .shiviz ShiViz log,
.mmd Mermaid sequence diagram, .html self-contained space-time diagram.

Flags:
%s`

// runTrace is `ipcscript trace ...`.
func runTrace(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ipcscript trace", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	limit := fs.Int("trace-limit", 0, fmt.Sprintf(".mmd: show at most this many events, the first and last halves (default %d)", trace.DefaultMermaidLimit))
	help := fs.BoolP("help", "h", false, "show this help")
	fs.Usage = func() { fmt.Fprintf(stderr, traceUsage, flagUsages(fs)) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return runtime.ExitOK
		}
		fmt.Fprintf(stderr, "ipcscript trace: %v\nRun 'ipcscript trace --help' for usage.\n", err)
		return runtime.ExitUsage
	}
	if *help {
		fmt.Fprintf(stdout, traceUsage, flagUsages(fs))
		return runtime.ExitOK
	}
	rest := fs.Args()
	if len(rest) != 3 || rest[0] != "convert" {
		fmt.Fprintf(stderr, "ipcscript trace: want: ipcscript trace convert IN.jsonl OUT.ext\nRun 'ipcscript trace --help' for usage.\n")
		return runtime.ExitUsage
	}
	if _, err := trace.FormatOf(rest[2]); err != nil {
		fmt.Fprintf(stderr, "ipcscript trace: %v\n", err)
		return runtime.ExitUsage
	}
	if err := trace.Convert(rest[1], rest[2], trace.Options{Limit: *limit}); err != nil {
		fmt.Fprintf(stderr, "ipcscript trace: %v\n", err)
		return runtime.ExitFailed
	}
	return runtime.ExitOK
}
