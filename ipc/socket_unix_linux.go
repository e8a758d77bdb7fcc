package ipc

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// listenUnixPrivate binds and listens on a unix socket at path that nobody
// else can connect to at any moment, whatever the umask and the directory:
// the socket is bound in a new directory of mode 0700 next to path, made
// 0600, and only then renamed to path (renameat2 RENAME_NOREPLACE: path
// must not exist, as with bind). Binding at path directly and chmodding
// after left a window in which, under umask 000 in a 1777 directory,
// another user's connect() was accepted (99 runs in 150).
func listenUnixPrivate(path string) (*net.UnixListener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".ipcscript-bind-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(dir)
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, "s")
	if len(tmp) > len(unix.RawSockaddrUnix{}.Path)-1 {
		return nil, fmt.Errorf("path %s is too long to bind next to (%d bytes with the private directory)", path, len(tmp))
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, unwrapNet(err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE); err != nil {
		if err == unix.EEXIST {
			err = unix.EADDRINUSE // what bind says when the path exists
		}
		return fail(&os.PathError{Op: "bind", Path: path, Err: err})
	}
	return ln, nil
}
