package main

// The Go API column: each case run through the ipc package directly, with
// no Lua, so the table separates what the kernel objects cost from what the
// Lua layer adds.
//
// How a Go cell runs: the harness re-executes this very binary with
// IPCSCRIPT_BENCH_GO=<prog> and the cell's arguments, which are exactly the
// arguments the row's Lua script takes (cases.go gives both columns one
// command): "pingpong link|mailbox|pipe|unix|mq|sem N", "tput P C CAP|unbounded N",
// "bulk pipe|unix|shm TOTAL CHUNK", "shmops add|mutex WORKERS N",
// "launch N", "idle K MS", plus the Go-only "reexec N". The child calls the
// goCase registered under prog, which measures (timing only the measured
// loop, after every process is ready, as the peers do) and returns the same
// JSON fields as the Lua script prints (ns_per_op, msgs_per_s, mb_per_s,
// ops_per_s, pids; ops, secs; ok). A case that needs other processes starts
// them with startWorker, which re-executes this binary again in a role
// registered with registerGoRole, handing it descriptors through ExtraFiles.
//
// A prog with no registered case shows "—" in its cells. The cases are
// wired in goapi_*.go, written against github.com/ipcscript/ipcscript/ipc
// (goapi_ipc.go has what they share), each registering from init:
//
//	func init() {
//		registerGoCase("pingpong", pingpongGo)
//		registerGoRole("pong", func(args []string) error { ... })
//	}
//
// A case may return figures with its metric set to nil and a "why" when it
// has no such mechanism; the cell then shows "—".

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// goCase measures one case in a child of the harness. args are the cell's
// arguments.
type goCase func(args []string) (figures, error)

// goRole is the body of a worker process started by startWorker.
type goRole func(args []string) error

var (
	goCases = map[string]goCase{}
	goRoles = map[string]goRole{}
)

func registerGoCase(prog string, c goCase) { goCases[prog] = c }
func registerGoRole(name string, r goRole) { goRoles[name] = r }

const (
	envGoCase = "IPCSCRIPT_BENCH_GO"
	envGoRole = "IPCSCRIPT_BENCH_ROLE"
)

// dispatchChild runs this process as a Go cell or a worker when the harness
// or a Go cell started it as one, and then exits; otherwise it returns.
// main calls it first, before any flag parsing.
func dispatchChild() {
	if prog, ok := os.LookupEnv(envGoCase); ok {
		os.Unsetenv(envGoCase)
		c, ok := goCases[prog]
		if !ok {
			fail(fmt.Errorf("%s=%q: no such Go case", envGoCase, prog))
		}
		f, err := c(os.Args[1:])
		if err != nil {
			fail(fmt.Errorf("go case %s: %v", prog, err))
		}
		b, err := json.Marshal(f)
		if err != nil {
			fail(err)
		}
		fmt.Printf("%s\n", b)
		os.Exit(0)
	}
	if role, ok := os.LookupEnv(envGoRole); ok {
		os.Unsetenv(envGoRole)
		r, ok := goRoles[role]
		if !ok {
			fail(fmt.Errorf("%s=%q: no such worker role", envGoRole, role))
		}
		if err := r(os.Args[1:]); err != nil {
			fail(fmt.Errorf("worker %s: %v", role, err))
		}
		os.Exit(0)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// startWorker starts this binary again as a worker in role, with args and
// the given descriptors (which arrive as fd 3, 4, ...). The worker dies
// with the process that started it.
func startWorker(role string, args []string, files ...*os.File) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c := exec.Command(exe, args...)
	c.Env = append(os.Environ(), envGoRole+"="+role)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	c.ExtraFiles = files
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return c, c.Start()
}
