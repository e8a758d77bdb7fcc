//go:build linux && !amd64

package runtime

import "golang.org/x/sys/unix"

// seccompFilter: none is generated for this architecture yet (see
// seccomp_linux.go); --sandbox says seccomp is not enforced.
var seccompFilter []unix.SockFilter
