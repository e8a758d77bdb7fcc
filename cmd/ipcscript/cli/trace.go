package cli

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/ipcscript/ipcscript/runtime"
	"github.com/ipcscript/ipcscript/trace"
)

// newTraceCmd is `ipcscript trace convert IN.jsonl OUT.ext`.
func newTraceCmd(stdout io.Writer) *cobra.Command {
	traceCmd := &cobra.Command{
		Use:   "trace",
		Short: "work with a recorded run (--trace): convert it into a view",
		Long: `Work with a recorded run, the canonical .jsonl that --trace writes:
'ipcscript trace convert IN.jsonl OUT.ext' turns it into a view.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			return usagef("trace: want: ipcscript trace convert IN.jsonl OUT.ext")
		},
	}
	var s settings
	convert := &cobra.Command{
		Use:   "convert [flags] IN.jsonl OUT.{jsonl,json,shiviz,mmd,html}",
		Short: "turn a recorded run into a view (.json .shiviz .mmd .html)",
		Long: `Convert a recorded run (the canonical .jsonl written by --trace) into a view,
chosen by OUT's extension: .json Chrome/Perfetto trace, .shiviz ShiViz log,
.mmd Mermaid sequence diagram, .html self-contained space-time diagram.`,
		Example: `  ipcscript --trace run.jsonl scripts/pipeline.lua
  ipcscript trace convert run.jsonl run.html`,
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("trace convert: want IN.jsonl OUT.ext, got %d arguments", len(args))
			}
			if _, err := trace.FormatOf(args[1]); err != nil {
				return usagef("trace convert: %v", err)
			}
			if err := trace.Convert(args[0], args[1], trace.Options{Limit: s.traceLimit}); err != nil {
				return &exitError{code: runtime.ExitFailed, msg: "trace convert: " + err.Error()}
			}
			return nil
		},
	}
	s.addFlags(convert.Flags(), "trace")
	convert.SetFlagErrorFunc(flagError)
	traceCmd.AddCommand(convert)
	return traceCmd
}
