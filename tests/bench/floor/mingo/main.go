// Command mingo does nothing: the benchmark harness starts it (built with
// CGO_ENABLED=0) to measure what starting a minimal Go program costs on
// the machine, the floor under the bare re-exec of ipcscript.
package main

func main() {}
