//go:build !linux

package ipc

// ipcscript runs on Linux only: see internal/linuxonly.
import _ "github.com/ipcscript/ipcscript/internal/linuxonly"
