//go:build ignore

// Static reports whether the ELF binaries named on the command line are
// statically linked (no program interpreter): .ci/run uses it on the
// README's CGO_ENABLED=0 build, without needing binutils.
package main

import (
	"debug/elf"
	"fmt"
	"os"
)

func main() {
	bad := false
	for _, path := range os.Args[1:] {
		f, err := elf.Open(path)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				fmt.Printf("%s is dynamically linked (it has a program interpreter)\n", path)
				bad = true
			}
		}
		f.Close()
	}
	if bad {
		os.Exit(1)
	}
}
