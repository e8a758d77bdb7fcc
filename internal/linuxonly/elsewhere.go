//go:build !linux

package linuxonly

const message = "ipcscript runs on Linux only"

// The build fails here, quoting the message: a string is not an int.
var _ int = message
