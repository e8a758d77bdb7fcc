// Command ipcscript runs Lua scripts that declare processes and the IPC
// objects between them. See `ipcscript --help`.
package main

import (
	"os"

	"github.com/ipcscript/ipcscript/cmd/ipcscript/cli"
	"github.com/ipcscript/ipcscript/runtime"
)

func main() {
	if os.Getenv("IPCSCRIPT_BARE_EXIT") != "" {
		// A benchmark probe: what starting this binary costs, with nothing
		// else, so launch cost can be read as a ratio to it.
		os.Exit(0)
	}
	runtime.Child(runtime.Options{}) // a child of a run never returns from here
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
