package cli

import (
	"github.com/ipcscript/ipcscript/runtime"
	"github.com/ipcscript/ipcscript/trace"
)

// newTraceCmd is `ipcscript trace convert IN.jsonl OUT.ext`.
func newTraceCmd() *command {
	traceCmd := &command{
		use:   "trace",
		short: "work with a recorded run (--trace): convert it into a view",
		long: `Work with a recorded run, the canonical .jsonl that --trace writes:
'ipcscript trace convert IN.jsonl OUT.ext' turns it into a view.`,
		args: noArgs,
		run: func(c *command, args []string) error {
			return usagef("trace: want: ipcscript trace convert IN.jsonl OUT.ext")
		},
	}
	var s settings
	convert := &command{
		use:   "convert [flags] IN.jsonl OUT.{jsonl,json,shiviz,mmd,html}",
		short: "turn a recorded run into a view (.json .shiviz .mmd .html)",
		long: `Convert a recorded run (the canonical .jsonl written by --trace) into a view,
chosen by OUT's extension: .json Chrome/Perfetto trace, .shiviz ShiViz log,
.mmd Mermaid sequence diagram, .html self-contained space-time diagram.`,
		example: `  ipcscript --trace run.jsonl scripts/pipeline.lua
  ipcscript trace convert run.jsonl run.html`,
		run: func(c *command, args []string) error {
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
	s.addFlags(convert.flagSet(), "trace")
	traceCmd.addCommand(convert)
	return traceCmd
}
