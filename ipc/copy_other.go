//go:build !amd64

package ipc

// copyLarge is copy (copy_amd64.go says why amd64 differs).
func copyLarge(dst, src []byte) { copy(dst, src) }
