//go:build !linux

package trace

// ipcscript runs on Linux only: see internal/linuxonly.
import _ "github.com/ipcscript/ipcscript/internal/linuxonly"
