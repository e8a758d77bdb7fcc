package runtime

import (
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/bindings"
	"github.com/ipcscript/ipcscript/ipc"
)

// prepare creates what every child shares: the status table, the script
// source, /dev/null for stdin.
func (sup *supervisor) prepare() error {
	env := sup.s.env
	if len(env.Procs) == 0 && env.Main == nil {
		return nil
	}
	st, err := ipc.NewStatusTable(env.StatusSlots())
	if err != nil {
		return err
	}
	sup.status = st
	env.Status = st
	for _, p := range env.Procs { // before any starts: a slot's serial says who has it
		st.Assign(p.Slot, uint32(p.Serial))
	}
	if env.Main != nil {
		st.Assign(env.Main.Slot, uint32(env.Main.Serial))
	}
	fd, err := unix.MemfdCreate("ipcscript:source", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return os.NewSyscallError("memfd_create", err)
	}
	sup.source = os.NewFile(uintptr(fd), "memfd:ipcscript:source")
	if _, err := sup.source.Write(scriptImage(sup.s.src, sup.s.proto)); err != nil {
		return err
	}
	// Every child runs the code in it: none may change it (script.go).
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		return os.NewSyscallError("fcntl F_ADD_SEALS", err)
	}
	sup.devnull, err = os.Open(os.DevNull)
	inheritedCloseOnExec.Do(markInheritedCloseOnExec)
	return err
}

var inheritedCloseOnExec sync.Once

// markInheritedCloseOnExec marks close-on-exec every descriptor this
// process inherited without it (from a shell, a test runner), so that no
// child gets one: a child holds exactly what its manifest gives it.
// ExtraFiles and Files duplicate their descriptors for the child, so this
// never takes a descriptor from a child it is meant for.
func markInheritedCloseOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.CloseOnExec(fd)
		}
	}
}

// start launches one child.
func (sup *supervisor) start(c *child) error {
	if err := sup.prepareStart(c); err != nil {
		return sup.started(c, err)
	}
	return sup.started(c, c.cmd.Start())
}

// launchAll launches the declared processes. Each child's descriptors,
// manifest and command are prepared here, in order, and handed to one of
// a few starters, which fork and exec it (cmd.Start waits for the exec)
// and finish its start: so the next child is prepared while the last one
// is still being exec'd. (One at a time, the launch loop was ~90% of a
// 64-process launch's wall time, two thirds of it waiting in cmd.Start.)
// The forks and execs still take turns: os/exec holds syscall.ForkLock
// across clone(CLONE_VFORK), which returns once the child has exec'd.
// A spawned process is launched by launch alone.
func (sup *supervisor) launchAll(procs []*bindings.Process) {
	starters := min(4, max(2, goruntime.GOMAXPROCS(0)))
	if len(procs) < 2*starters {
		for _, p := range procs {
			sup.launch(p, false)
		}
		return
	}
	ready := make(chan *child, starters)
	var wg sync.WaitGroup
	for range starters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range ready {
				if err := sup.started(c, c.cmd.Start()); err != nil {
					sup.notStarted(c, err)
				} else {
					sup.wait(c)
				}
			}
		}()
	}
	for _, p := range procs {
		c := sup.newChild(p, false)
		if err := sup.prepareStart(c); err != nil {
			sup.notStarted(c, sup.started(c, err))
			continue
		}
		ready <- c
	}
	close(ready)
	wg.Wait()
}

// prepareStart makes what child c is started with: its command, with its
// descriptors, manifest and outputs.
func (sup *supervisor) prepareStart(c *child) error {
	p := c.p
	env := sup.s.env
	var cmd *exec.Cmd
	if p.Exec != nil {
		cmd = exec.Command(p.Exec[0], p.Exec[1:]...)
		cmd.Env = sup.childEnviron("")
	} else {
		exe := sup.s.opts.Executable
		if exe == "" {
			exe = "/proc/self/exe"
		}
		cmd = exec.Command(exe)
		cmd.Args = []string{os.Args[0] + " [" + p.Name + "]"}
		// One manifest, its lists kept from the last child's: a manifest
		// per child, each listing every process and inbox to be encoded
		// into a few hundred bytes, was most of the supervisor's garbage
		// (~18 KiB a child at 64 processes, and a page fault or more).
		m := &sup.manifest
		*m = bindings.Manifest{Script: sup.s.name, Args: sup.s.opts.Args, Self: p.Name, RunDir: env.RunDirPath(), SpawnArgs: p.SpawnArgs,
			Procs: m.Procs[:0], Decls: m.Decls[:0], Implicit: m.Implicit[:0]}
		if env.RunDirPath() != "" {
			id, _ := env.RunDir()
			m.RunID = id.ID()
		}
		// The declared processes, and a spawned one itself: it learns of
		// other spawned ones when it names them (ctl.go, req proc), so its
		// manifest does not grow with every process the run started.
		for _, q := range env.Procs[:sup.declared] {
			m.Procs = append(m.Procs, manifestProc(q))
		}
		if c.spawned || p == env.Main {
			m.Procs = append(m.Procs, manifestProc(p))
		}
		ctlParent, ctlChild, err := socketPair()
		if err != nil {
			return err
		}
		c.ctl = ctlParent
		c.outs = append(c.outs, ctlChild) // closed once started
		files := append(make([]*os.File, 0, 3+len(env.Decls)+len(env.Implicit)), ctlChild, sup.status.Region.File, sup.source)
		m.Ctl, m.Status, m.Source = 3, 4, 5
		// Each declaration with the descriptors of it this process holds,
		// appended to ds: its descriptor list reuses the one the last
		// child's manifest had in that place.
		describe := func(ds []bindings.ManifestDecl, d *bindings.Decl) []bindings.ManifestDecl {
			var fds []bindings.ManifestFD
			if len(ds) < cap(ds) {
				fds = ds[: len(ds)+1 : len(ds)+1][len(ds)].FDs[:0]
			}
			md := bindings.ManifestDecl{Kind: d.Kind, Name: d.Name, Line: d.Line, Spec: d.Spec, FDs: fds}
			for _, f := range d.Files {
				if !f.Owns(p) || f.File == nil {
					continue
				}
				md.SetFD(f.Role, 3+len(files))
				files = append(files, f.File)
			}
			return append(ds, md)
		}
		for _, d := range env.Decls {
			if _, closed := d.Object.(bindings.Closer); closed && c.spawned {
				// The supervisor closed its copies at launch (a pipe's
				// ends): a spawned process gets one in a message.
				m.Decls = append(m.Decls, bindings.ManifestDecl{Kind: d.Kind, Name: d.Name, Line: d.Line, Spec: d.Spec})
				continue
			}
			m.Decls = describe(m.Decls, d)
		}
		for i, d := range env.Implicit {
			if i >= sup.declaredImplicit && !(c.spawned && d.Name == p.Name) {
				continue // a spawned process's inbox: asked for when needed
			}
			if d.Name != p.Name && d.Name != bindings.ParentName {
				// Another declared process's inbox: listed, and its
				// descriptor handed over when this process first sends
				// there (ctl.go, req proc). Every inbox to every child
				// was N descriptors each to place, carry through exec
				// and close: ~7% of a 64-process launch's CPU.
				m.Implicit = append(m.Implicit, bindings.ManifestDecl{Kind: d.Kind, Name: d.Name, Line: d.Line, Spec: d.Spec})
				continue
			}
			m.Implicit = describe(m.Implicit, d)
			if i >= sup.declaredImplicit {
				m.Implicit[len(m.Implicit)-1].Index = d.Index
			}
		}
		files = sup.traceFiles(c, m, files)
		sup.manifestBuf = appendManifest(append(sup.manifestBuf[:0], envChild+"="...), m)
		cmd.Env = sup.childEnviron(string(sup.manifestBuf))
		cmd.ExtraFiles = files
	}
	cmd.Stdin = sup.devnull
	if p.Stdin != nil {
		cmd.Stdin = p.Stdin.File("r")
	}
	var err error
	if cmd.Stdout, err = sup.output(c, p.Stdout, sup.s.stdout, "w"); err != nil {
		return err
	}
	if p.Stdout == nil && p.Stderr == nil && sup.s.stderr == sup.s.stdout {
		// One writer for both streams (a test's capture): one pipe, so the
		// child's stdout and stderr lines keep the order it wrote them in.
		cmd.Stderr = cmd.Stdout
	} else if cmd.Stderr, err = sup.output(c, p.Stderr, sup.s.stderr, "w"); err != nil {
		return err
	}
	// Each child leads a process group of its own: a terminal's Ctrl-C
	// reaches only the supervisor, and stopping a child also stops whatever
	// it started. (One group for all would need its leader alive: a short
	// first child would make every later setpgid fail with EPERM.)
	// A child of ours dies of SIGTERM when the supervisor dies, which it
	// handles by killing its descendants first (reaper_linux.go); a
	// program of the script's (exec) is killed outright.
	death := syscall.SIGKILL
	if p.Exec == nil {
		death = syscall.SIGTERM
	}
	// A pidfd of the child from the clone itself, to await its exit on
	// (awaitExit): no window in which its pid could name another process.
	c.pidfd = -1
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: death, PidFD: &c.pidfd}
	if sb := sup.s.opts.Sandbox; sb.Enabled && p.Exec == nil {
		cmd.Env = append(cmd.Env, envSandbox+"="+sb.env()) // sandbox_linux.go
	}
	c.cmd = cmd
	c.start = time.Now()
	if sup.status != nil && c.spawned {
		sup.status.Assign(p.Slot, uint32(p.Serial))
	}
	sup.traceSpawning(c)
	return nil
}

// started finishes the start of child c, whose cmd.Start (or preparation)
// returned err: the parent's copies of the child's ends are closed and,
// when it runs, its pid is known (sup.wait reads its control socket). It
// may run beside other starts (launchAll).
func (sup *supervisor) started(c *child, err error) error {
	p, cmd := c.p, c.cmd
	for _, f := range c.outs { // the child's ends; the parent keeps the read ends
		f.Close()
	}
	if err != nil {
		if c.ctl != nil {
			c.ctl.Close()
		}
		return err
	}
	p.Pid = cmd.Process.Pid
	if c.out != nil {
		c.out.pid.Store(int32(p.Pid))
	}
	sup.wd.addGroup(p.Pid)
	if sup.status != nil {
		atomic.StoreInt32(&sup.status.Slot(p.Slot).Pid, int32(p.Pid))
	}
	return nil
}

func manifestProc(q *bindings.Process) bindings.ManifestProc {
	return bindings.ManifestProc{Name: q.Name, Group: q.Group, Index: q.Index, Count: q.Count, Slot: q.Slot, Serial: q.Serial}
}

// socketPair returns a close-on-exec SOCK_SEQPACKET pair: message
// boundaries are kept, and EOF tells either side the other is gone. The
// first (the supervisor's) is non-blocking, so the Go runtime polls it and
// closing it ends a pending read; the second (the child's) blocks.
func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	// The child's end blocking again: one F_SETFL, where setting the
	// supervisor's end non-blocking took F_GETFL and F_SETFL.
	if _, err := unix.FcntlInt(uintptr(fds[1]), unix.F_SETFL, 0); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "ctl"), nil
}

// childEnviron is the environment without any inherited IPCSCRIPT_CHILD,
// plus manifest when set (IPCSCRIPT_CHILD=<the manifest>): then also
// GOMAXPROCS=1 unless the user set GOMAXPROCS, which the child removes at
// once (restoreEnviron), and the run's mark (token, reaper_linux.go). The
// inherited part is read once per run (sup.baseEnv), not once per child.
func (sup *supervisor) childEnviron(manifest string) []string {
	sup.baseEnvOnce.Do(func() {
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, envChild+"=") && !strings.HasPrefix(kv, envUnset+"=") && !strings.HasPrefix(kv, envRun+"=") {
				sup.baseEnv = append(sup.baseEnv, kv)
			}
		}
		_, sup.userMaxProcs = os.LookupEnv("GOMAXPROCS")
	})
	env := append(make([]string, 0, len(sup.baseEnv)+4), sup.baseEnv...)
	if sup.token != "" {
		if sup.runEnv == "" {
			sup.runEnv = envRun + "=" + sup.token
		}
		env = append(env, sup.runEnv)
	}
	if manifest != "" {
		env = append(env, manifest)
		if !sup.userMaxProcs {
			env = append(env, "GOMAXPROCS=1", envUnset+"=GOMAXPROCS")
		}
	}
	return env
}
