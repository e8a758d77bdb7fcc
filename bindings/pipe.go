package bindings

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

const pipeClass = "ipc.pipe"

// pipe is an anonymous kernel pipe: one direction, common origin. The parent
// creates it; children inherit the ends they may use. With from/to, only
// `from` holds the write end and only `to` the read end, so the reader sees
// EOF as soon as the writer closes or exits. Without them every process
// holds both ends until it first uses the pipe: its first write closes its
// read end and its first read closes its write end.
type pipe struct {
	stream
	decl     *Decl
	from, to string
}

func (p *pipe) wireDecl() *Decl { return p.decl }

func (p *pipe) String() string { return p.what }

// claim records that process name alone uses role ("r" or "w") of the pipe
// because it is wired to its stdin/stdout.
func (p *pipe) claim(L *lua.LState, role, name, line string) {
	for i := range p.decl.Files {
		f := &p.decl.Files[i]
		if f.Role != role {
			continue
		}
		if f.Only != "" && f.Only != name {
			L.RaiseError("process %q at %s: the %s end of %s belongs to %q", name, line, roleName(role), p.what, f.Only)
		}
		f.Only = name
	}
}

func roleName(role string) string {
	if role == "r" {
		return "read"
	}
	return "write"
}

// CloseParent closes the parent's copies once the children hold the ends.
func (p *pipe) CloseParent() {
	for _, f := range p.decl.Files {
		f.File.Close()
	}
}

// closeUnusedEnds arranges that the first read closes the write end this
// process holds, and the first write the read end, so EOF and hang-ups
// work.
func (p *pipe) closeUnusedEnds() {
	p.beforeRead = func() {
		if p.w != nil {
			p.w.Close()
			p.w = nil
		}
	}
	p.beforeWrite = func() {
		if p.r != nil {
			p.r.Close()
			p.r = nil
		}
	}
}

func openPipe(L *lua.LState, mod *lua.LTable, env *Env) {
	env.registerClassOf(L, pipeClass, streamMethodMap, nil)
	env.setFunc(L, mod, "pipe", env.luaPipe)
}

// ipc.pipe([{from = "a", to = "b"}]) -> pipe
func (e *Env) luaPipe(L *lua.LState) int {
	opts := optTable(L, 1)
	from := optString(L, opts, "from", "")
	to := optString(L, opts, "to", "")
	spec := ""
	if from != "" || to != "" {
		spec = fmt.Sprintf("from=%s to=%s", from, to)
	}
	name := fmt.Sprintf("#%d", len(e.Decls)+1)
	d := e.Declare(L, "pipe", name, spec)
	p := &pipe{decl: d, from: from, to: to}
	p.what = "pipe at " + d.Line
	p.obj = int32(d.Index)
	p.tdecl = d
	p.slot = e.Slot
	d.Object = p
	e.Make(L, d, MakerFuncs{
		CreateFn: func(d *Decl) error {
			r, w, err := ipc.NewPipe()
			if err != nil {
				return fmt.Errorf("%s: %w", p.what, err)
			}
			d.AddFile("r", r, to)
			d.AddFile("w", w, from)
			// The parent never uses a pipe: it only hands the ends over.
			p.beforeRead = func() { L.RaiseError("%s: pipes are used inside process bodies, not by the supervisor", p.what) }
			p.beforeWrite = p.beforeRead
			return nil
		},
		OpenFn: func(d *Decl) error {
			var err error
			if p.r, err = p.newStreamEnd("pipe", d.File("r")); err != nil {
				return err
			}
			if p.w, err = p.newStreamEnd("pipe", d.File("w")); err != nil {
				return err
			}
			if from != "" && p.r != nil {
				p.r.SetPeer(func() int32 { return e.pidOf(from) })
			}
			p.closeUnusedEnds()
			return nil
		},
	})
	L.Push(newUserData(L, pipeClass, p))
	return 1
}
