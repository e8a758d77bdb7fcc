package runtime

import (
	"encoding/binary"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/bindings"
)

// The kernel's part of --sandbox, in each child, in two stages:
//
//  1. (envSandbox set) no_new_privs, then a Landlock domain on the current
//     thread: files only in the run directory, the script's declared
//     FIFO and socket paths, /dev/null and friends, read-only /proc and
//     time zones, and execute only of our own binary; TCP connect only to
//     the run's declared TCP listeners; no signals or abstract sockets
//     outside the domain. Landlock binds a thread (ABI < 8 has no TSYNC)
//     and a Go process has several, so the thread then re-executes the
//     binary: a process image starts whole inside the domain.
//  2. (envSandboxStage) resource limits and a seccomp filter on every
//     thread (TSYNC): no execve, no new processes (clone without
//     CLONE_THREAD, fork, vfork), no ptrace or /proc/PID/mem-style access
//     to others, no mounts, namespaces, modules, bpf, keyrings.
//
// What the kernel here cannot enforce is reported by the supervisor
// (sandboxGaps) instead of being pretended.
const (
	envSandbox      = "IPCSCRIPT_SANDBOX"       // "cpu as nofile": the limits
	envSandboxStage = "IPCSCRIPT_SANDBOX_STAGE" // set for stage 2
)

// landlockABI is the kernel's Landlock ABI version, 0 when it has none.
func landlockABI() int {
	r, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, 1) // LANDLOCK_CREATE_RULESET_VERSION
	if e != 0 {
		return 0
	}
	return int(r)
}

// sandboxGaps lists what --sandbox cannot enforce on this kernel, for the
// run to say so.
func sandboxGaps() []string {
	var gaps []string
	abi := landlockABI()
	switch {
	case abi == 0:
		gaps = append(gaps, "Landlock is not available: file system and network access are restricted in Lua only")
	case abi < 4:
		gaps = append(gaps, fmt.Sprintf("Landlock ABI %d < 4: TCP connect and bind are not restricted by the kernel", abi))
	}
	if abi > 0 && abi < 6 {
		gaps = append(gaps, fmt.Sprintf("Landlock ABI %d < 6: signals to processes outside the run are not blocked", abi))
	}
	gaps = append(gaps, "UDP is not restricted by the kernel (Landlock ABI < 10)")
	if !seccompSupported() {
		gaps = append(gaps, "seccomp is not available: execve and process creation are refused in Lua only")
	} else if len(seccompFilter) == 0 {
		gaps = append(gaps, "no seccomp filter is built for "+goruntime.GOARCH+": execve and process creation are refused in Lua only")
	}
	gaps = append(gaps, "the top level (main) is restricted in Lua only: the supervisor must create the run's objects and start its processes")
	if os.Getuid() == 0 {
		gaps = append(gaps, "running as root: RLIMIT_NPROC does not apply (process creation is refused by seccomp instead)")
	}
	return gaps
}

func (s Sandbox) env() string {
	return fmt.Sprintf("%d %d %d", s.cpu(), s.addressSpace(), s.openFiles())
}

// childSandbox runs at the top of Child. Stage 1 never returns (it
// re-executes); stage 2 returns once the limits and the filter are on.
func childSandbox(manifest string) error {
	spec, on := os.LookupEnv(envSandbox)
	if !on {
		return nil
	}
	if os.Getenv(envSandboxStage) == "" {
		return sandboxStage1(manifest)
	}
	os.Unsetenv(envSandbox)
	os.Unsetenv(envSandboxStage)
	var cpu, as, nofile int64
	fmt.Sscan(spec, &cpu, &as, &nofile)
	for _, l := range []struct {
		res int
		v   int64
	}{{unix.RLIMIT_CPU, cpu}, {unix.RLIMIT_AS, as}, {unix.RLIMIT_NOFILE, nofile}, {unix.RLIMIT_CORE, 0}} {
		if l.v < 0 || (l.v == 0 && l.res != unix.RLIMIT_CORE) {
			continue
		}
		lim := unix.Rlimit{Cur: uint64(l.v), Max: uint64(l.v)}
		if l.res == unix.RLIMIT_CPU {
			lim.Max = uint64(l.v) + 1 // SIGXCPU first (a message), SIGKILL a second later
		}
		if err := unix.Setrlimit(l.res, &lim); err != nil {
			return fmt.Errorf("setrlimit %d: %w", l.res, err)
		}
	}
	return loadSeccompFilter()
}

// sandboxStage1 enters a Landlock domain on this thread and re-executes.
func sandboxStage1(manifest string) error {
	goruntime.LockOSThread() // the domain and the exec must be this thread's
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if abi := landlockABI(); abi > 0 {
		m, err := decodeManifest(manifest)
		if err != nil {
			return err
		}
		if err := landlockRestrict(abi, m, exe); err != nil {
			return fmt.Errorf("landlock: %w", err)
		}
	}
	env := append(os.Environ(), envChild+"="+manifest, envSandboxStage+"=1")
	return syscall.Exec(exe, os.Args, env)
}

// Landlock file system rights by ABI.
const (
	llFSv1     = 1<<13 - 1 // execute .. make_sym
	llRefer    = 1 << 13   // ABI 2
	llTruncate = 1 << 14   // ABI 3
	llIoctlDev = 1 << 15   // ABI 5
	llRead     = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	llWrite    = unix.LANDLOCK_ACCESS_FS_WRITE_FILE
)

func landlockRestrict(abi int, m *bindings.Manifest, exe string) error {
	fs := uint64(llFSv1)
	if abi >= 2 {
		fs |= llRefer
	}
	if abi >= 3 {
		fs |= llTruncate
	}
	if abi >= 5 {
		fs |= llIoctlDev
	}
	attr := [3]uint64{fs, 0, 0}
	size := 8
	if abi >= 4 {
		attr[1] = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		size = 16
	}
	if abi >= 6 {
		attr[2] = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
		size = 24
	}
	r, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr[0])), uintptr(size), 0)
	if e != 0 {
		return os.NewSyscallError("landlock_create_ruleset", e)
	}
	rfd := int(r)
	defer unix.Close(rfd)
	all := fs &^ llRefer
	file := all &^ (unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK | unix.LANDLOCK_ACCESS_FS_MAKE_SYM | unix.LANDLOCK_ACCESS_FS_EXECUTE)
	allow := func(path string, access uint64, dir bool) error {
		if !dir {
			access &= file | unix.LANDLOCK_ACCESS_FS_EXECUTE
		}
		fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil // missing: nothing to allow
		}
		defer unix.Close(fd)
		var b [12]byte
		binary.NativeEndian.PutUint64(b[:8], access)
		binary.NativeEndian.PutUint32(b[8:], uint32(fd))
		if _, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rfd), 1, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0); e != 0 {
			return fmt.Errorf("allow %s: %w", path, e)
		}
		return nil
	}
	rules := []struct {
		path   string
		access uint64
		dir    bool
	}{
		{exe, unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE, false},
		// the dynamic loader and libc, when the binary is linked against them
		{"/lib", llRead | unix.LANDLOCK_ACCESS_FS_EXECUTE, true},
		{"/lib64", llRead | unix.LANDLOCK_ACCESS_FS_EXECUTE, true},
		{"/usr/lib", llRead | unix.LANDLOCK_ACCESS_FS_EXECUTE, true},
		{"/usr/lib64", llRead | unix.LANDLOCK_ACCESS_FS_EXECUTE, true},
		{"/etc/ld.so.cache", llRead, false},
		{"/dev/null", llRead | llWrite, false},
		{"/dev/zero", llRead, false},
		{"/dev/urandom", llRead, false},
		{"/proc", llRead, true},
		{"/sys/kernel/mm/transparent_hugepage", llRead, true},
		{"/etc/localtime", llRead, false},
		{"/usr/share/zoneinfo", llRead, true},
	}
	if m.RunDir != "" {
		rules = append(rules, struct {
			path   string
			access uint64
			dir    bool
		}{m.RunDir, all, true})
	}
	for _, d := range m.Decls {
		p := declaredPath(d)
		if p != "" {
			rules = append(rules, struct {
				path   string
				access uint64
				dir    bool
			}{p, llRead | llWrite, false})
		}
	}
	for _, rl := range rules {
		if err := allow(rl.path, rl.access, rl.dir); err != nil {
			return err
		}
	}
	if abi >= 4 { // connect only to the run's own TCP listeners
		for _, d := range m.Decls {
			if d.Kind != "listener" || !strings.Contains(d.Spec, "kind=tcp") {
				continue
			}
			fd, ok := d.FD("l")
			if !ok {
				continue
			}
			sa, err := unix.Getsockname(fd)
			if err != nil {
				continue
			}
			var port int
			switch a := sa.(type) {
			case *unix.SockaddrInet4:
				port = a.Port
			case *unix.SockaddrInet6:
				port = a.Port
			}
			var b [16]byte
			binary.NativeEndian.PutUint64(b[:8], unix.LANDLOCK_ACCESS_NET_CONNECT_TCP)
			binary.NativeEndian.PutUint64(b[8:], uint64(port))
			if _, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rfd), 2, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0); e != 0 {
				return fmt.Errorf("allow tcp port %d: %w", port, e)
			}
		}
	}
	if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(rfd), 0, 0); e != 0 {
		return os.NewSyscallError("landlock_restrict_self", e)
	}
	return nil
}

// declaredPath is the file a declaration names outside the run directory
// (a FIFO's path, a unix listener's path), or "".
func declaredPath(d bindings.ManifestDecl) string {
	switch d.Kind {
	case "fifo":
		if i := strings.Index(d.Spec, "path="); i >= 0 {
			if p, err := strconv.Unquote(d.Spec[i+5:]); err == nil {
				return p
			}
		}
	case "listener":
		if strings.Contains(d.Spec, "kind=unix") && strings.Contains(d.Name, "/") {
			return d.Name
		}
	}
	return ""
}

// SandboxAvailable reports whether the kernel offers Landlock or seccomp.
func SandboxAvailable() bool {
	return landlockABI() > 0 || seccompSupported() && len(seccompFilter) > 0
}
