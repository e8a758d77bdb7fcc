package runtime

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The --sandbox seccomp filter is a fixed program: the policy (in
// seccomp_policy_test.go) is assembled by github.com/elastic/go-seccomp-bpf
// when the program is generated, not when a process starts. Linking that
// library put its tables of every architecture's system call names into
// every process's start-up (a 165 KB init and 70 page faults in each child,
// sandbox or not); the generated seccomp_filter_GOARCH.go holds just the
// instructions, and TestSeccompFilterIsGenerated checks that they are what
// the library assembles today (`go test ./runtime -run
// TestSeccompFilterIsGenerated -update-seccomp` rewrites them).

// seccompSupported reports whether the kernel has seccomp filters: strict
// mode with a non-zero flag is refused with EINVAL where the call exists.
func seccompSupported() bool {
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_STRICT, 1, 0)
	return e == unix.EINVAL
}

// loadSeccompFilter sets no_new_privs and installs seccompFilter on every
// thread of the process (TSYNC). Without a filter for this architecture or
// without seccomp it does nothing: Sandbox.Gaps says so.
func loadSeccompFilter() error {
	if len(seccompFilter) == 0 || !seccompSupported() {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(seccompFilter)), Filter: &seccompFilter[0]}
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	if e != 0 {
		return fmt.Errorf("loading the seccomp filter: %w", syscall.Errno(e))
	}
	return nil
}
