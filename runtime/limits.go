package runtime

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/bindings"
)

// ExitInternal is ExitSoftware: the exit code of an internal error of
// ipcscript itself, a Go panic in the runtime or in a binding. Go's own
// exit code for a panic, 2, is the code for usage errors.
const ExitInternal = ExitSoftware

// internalPrefix starts the message of an internal error, in a process's
// error or the run's; the report's exit code is then ExitInternal.
const internalPrefix = "internal error (a bug in ipcscript, or in a Go module of the host): "

// MaxScriptSize is the largest script a run reads. A script is source
// text; without a bound, `ipcscript /dev/zero` read until the machine's
// OOM killer came.
const MaxScriptSize = 16 << 20

// readScript reads a script file of at most MaxScriptSize bytes. The
// report it returns on failure is a load error (exit 65) that says why.
func readScript(path string) ([]byte, *Report) {
	fail := func(format string, args ...any) ([]byte, *Report) {
		return nil, &Report{Script: path, LoadError: true, Error: fmt.Sprintf(format, args...)}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, unreadable(path, err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxScriptSize+1))
	if err != nil {
		return fail("cannot read script: %v", err)
	}
	if len(src) > MaxScriptSize {
		return fail("cannot read script: %s is larger than %d MiB, the largest script ipcscript runs", path, MaxScriptSize>>20)
	}
	return src, nil
}

// errorText is how an error value reads in a report: through __tostring
// when it has one (error({code = 3}) with a metatable that names it).
func errorText(L *lua.LState, v lua.LValue) string {
	if L != nil {
		if s, ok := safeToString(L, v); ok {
			return s
		}
	}
	return v.String()
}

// safeToString calls tostring(v) (honouring __tostring) in protected mode:
// a __tostring that raises leaves the plain form.
func safeToString(L *lua.LState, v lua.LValue) (s string, ok bool) {
	if _, isStr := v.(lua.LString); isStr {
		return string(v.(lua.LString)), true
	}
	if L.GetMetaField(v, "__tostring") == lua.LNil {
		return "", false
	}
	top := L.GetTop()
	defer L.SetTop(top)
	L.Push(L.GetGlobal("tostring"))
	L.Push(v)
	if err := L.PCall(1, 1, nil); err != nil {
		return "", false
	}
	return L.Get(-1).String(), true
}

// isInternal reports whether a message is an internal error's.
func isInternal(msg string) bool {
	return strings.HasPrefix(strings.TrimPrefix(msg, "main: "), internalPrefix)
}

// RecoverInternal turns a panic of the runtime into an internal error:
// deferred by a host (the CLI) around a run, it prints the panic and the
// stack and sets *code to ExitInternal.
func RecoverInternal(stderr io.Writer, code *int) {
	r := recover()
	if r == nil {
		return
	}
	fmt.Fprintf(stderr, "ipcscript: %s%v\n%s", internalPrefix, r, debug.Stack())
	*code = ExitInternal
}

// fdsPerProcess is what a live child costs the supervisor in descriptors:
// its control socket, its stdout and stderr pipes, its pidfd, the pidfd
// its exit is awaited on (awaitExit) and its inbox (measured: 2,519
// descriptors with 501 children before that second pidfd).
const fdsPerProcess = 6

// defaultMaxProcs is --max-procs when set (n > 0), else
// bindings.DefaultMaxProcs, or fewer when the descriptor limit (ulimit
// -n; Go raises the soft limit to the hard one) cannot hold that many
// live children: the cap's clear error comes before "too many open files".
func defaultMaxProcs(n int) int {
	if n > 0 {
		return n
	}
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < uint64(bindings.DefaultMaxProcs*fdsPerProcess+256) {
		return max(16, (int(rl.Cur)-256)/fdsPerProcess)
	}
	return bindings.DefaultMaxProcs
}
