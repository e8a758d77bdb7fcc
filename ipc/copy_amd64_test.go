package ipc

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// hasERMS asks the CPU itself; it must agree with golang.org/x/sys/cpu,
// which the package used before, on the first call and on later (cached)
// ones.
func TestHasERMSAgreesWithXSysCPU(t *testing.T) {
	for i := range 2 {
		if got := hasERMS(); got != cpu.X86.HasERMS {
			t.Fatalf("call %d: hasERMS() = %v, golang.org/x/sys/cpu says %v", i+1, got, cpu.X86.HasERMS)
		}
	}
	if maxLeaf, _, _, _ := cpuid(0, 0); maxLeaf == 0 {
		t.Fatal("CPUID leaf 0 reports no leaves: cpuid returns nothing")
	}
}
