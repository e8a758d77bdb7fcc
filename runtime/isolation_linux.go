package runtime

import "golang.org/x/sys/unix"

// NotDumpable makes this process non-dumpable (PR_SET_DUMPABLE 0): its
// /proc/PID/fd, /proc/PID/mem and environ become root's, and ptrace by
// another process of the same user is refused. Every child of a run calls
// it at start; the command line calls it for the supervisor. Without it,
// one run's process read and overwrote another concurrent run's shared
// memory through /proc/PID/fd. (An exec'd program is dumpable again: the
// kernel resets the flag at execve.)
func NotDumpable() { unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) }
