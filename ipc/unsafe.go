package ipc

import "unsafe"

// ptrAt returns a pointer to mem[off]; callers guarantee bounds and alignment.
func ptrAt(mem []byte, off int) unsafe.Pointer { return unsafe.Pointer(&mem[off]) }
