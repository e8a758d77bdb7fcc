package bindings

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

// Limits a script cannot talk its way past: how many processes a run may
// have, how long a name may be, how far a duration may reach. They are
// checked where the script says the value, so the error names its line.

// DefaultMaxProcs is the number of processes a run may have at once
// unless the host says otherwise (Env.MaxProcs, --max-procs): declared
// ones, and spawned ones until they have ended (a per-connection server
// may start any number over a run, so many at a time). An idle child
// costs about 2 MiB of memory and 5 descriptors of the supervisor's
// (docs/LUA_API.md, ipc.spawn).
const DefaultMaxProcs = 4000

// MaxProcsLimit is the most --max-procs can say: a process's slot is its
// sender index in every queue, which tracks ipc.MaxSenders-1 senders (the
// supervisor is one).
const MaxProcsLimit = ipc.MaxSenders - 1

// maxNameLen bounds declared names (a name travels in every child's
// manifest and, for FIFOs and sockets, becomes a file name).
const maxNameLen = 255

// maxProcs is the cap in force for this run.
func (e *Env) maxProcs() int {
	if e.MaxProcs > 0 {
		return min(e.MaxProcs, MaxProcsLimit)
	}
	return DefaultMaxProcs
}

// checkName refuses names no kernel object, file name or argv can carry:
// a NUL byte, control characters, invalid UTF-8, or more than maxNameLen
// bytes. It returns "" when the name is fine, else why not.
func checkName(name string) string {
	switch {
	case strings.IndexByte(name, 0) >= 0:
		return "contains a NUL byte"
	case len(name) > maxNameLen:
		return fmt.Sprintf("is %d bytes long (at most %d)", len(name), maxNameLen)
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Sprintf("contains the control character %q", r)
		}
	}
	return ""
}

// maxSeconds is the longest duration a script may give: beyond it
// time.Duration (int64 nanoseconds) overflows, and a timeout of 1e300
// would silently become "none".
const maxSeconds = float64(math.MaxInt64/int64(time.Second)) - 1

// Seconds converts a script's duration in seconds. NaN, negative, infinite
// and overflowing values are errors that name the value; what says whose
// duration it is ("ipc.sleep", "timeout").
func Seconds(what string, s float64) (time.Duration, error) {
	switch {
	case math.IsNaN(s):
		return 0, fmt.Errorf("%s: NaN is not a number of seconds", what)
	case s < 0:
		return 0, fmt.Errorf("%s: %v seconds is negative", what, s)
	case math.IsInf(s, 1) || s == math.MaxFloat64: // gopher-lua's math.huge
		return 0, fmt.Errorf("%s: inf is not a number of seconds (leave it out to wait without a limit)", what)
	case s > maxSeconds:
		return 0, fmt.Errorf("%s: %g seconds is more than %.0f years, the longest it can wait", what, s, maxSeconds/(365.25*86400))
	}
	return time.Duration(s * float64(time.Second)), nil
}

// recordPath records in the run directory a FIFO or unix socket the run
// made at a path the script gave, so that a later run removes it if this
// one dies before it can (ipc.RunDir.RecordPath).
func (e *Env) recordPath(L *lua.LState, what, path string) {
	rd, err := e.RunDir()
	if err == nil {
		err = rd.RecordPath(path)
	}
	if err != nil {
		L.RaiseError("%s: %v", what, err)
	}
}
