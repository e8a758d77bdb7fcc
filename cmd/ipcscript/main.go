// Command ipcscript runs Lua scripts that declare processes and the IPC
// objects between them. See `ipcscript --help`.
package main

import (
	"os"

	"github.com/ipcscript/ipcscript/cmd/ipcscript/cli"
	"github.com/ipcscript/ipcscript/runtime"
)

func main() {
	runtime.Child(runtime.Options{}) // a child of a run never returns from here
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
