// Package linuxonly stops a build for another operating system with one
// message. ipcscript is built on memfd, futexes, POSIX message queues and
// /proc/self/exe; on another GOOS its packages would fail with dozens of
// "undefined" errors that say nothing of why. The packages at the bottom
// of the import graph (ipc, trace) import this one in a file built only
// off Linux, so the go command compiles it first and, when it fails,
// builds nothing that depends on it: the one error is the first and the
// last.
package linuxonly
