package bindings

import (
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"

	"github.com/ipcscript/ipcscript/ipc"
)

// Host is what declarations do in a Lua state, so that no object kind has
// to ask. The parent's host creates kernel objects and records the
// descriptors to hand over; a child's host binds each declaration to the
// descriptors its manifest lists; the checker's host only records. The
// runtime picks one (ParentHost, ChildHost, CheckHost) when it makes the
// Env.
//
// A kind file says once what its object is (a Maker: how it is created,
// how it is opened from what a child inherits) and calls Env.Make; a new
// way to provide objects (a transport that reaches other hosts) is a new
// Host, and a concern that cuts across every kind (recording what is made)
// is a Host that wraps another: see host_test.go.
type Host interface {
	// Role says which of the three this is, for what is not about objects
	// (ipc.run launches processes or runs a body).
	Role() Role
	// Declared is called for every declaration as it is made. A child's
	// host checks it against the parent's declaration of the same rank and
	// attaches the inherited descriptors to d; the others do nothing.
	Declared(L *lua.LState, d *Decl)
	// Make gives declaration d its object as m describes it: created in the
	// parent (m.Create attaches the descriptors to hand over), opened from
	// the inherited descriptors in a child (m.Open), nothing while checking
	// (made is false).
	Make(d *Decl, m Maker) (made bool, err error)
	// RunDir makes the run's private directory (Env.RunDir keeps it):
	// created by the parent, opened from the manifest by a child, none
	// while checking.
	RunDir() (*ipc.RunDir, error)
}

// Role names a Host.
type Role int

const (
	RoleParent Role = iota // create kernel objects; ipc.run launches processes
	RoleChild              // bind to inherited objects; ipc.run runs this process's body
	RoleCheck              // record declarations only; create nothing, launch nothing
)

// Maker is what an object kind says once about its object.
type Maker interface {
	Create(d *Decl) error // in the parent: make it, d.AddFile what children get
	Open(d *Decl) error   // in a child: open it from d.File(role)
}

// MakerFuncs is a Maker from two functions.
type MakerFuncs struct {
	CreateFn func(d *Decl) error
	OpenFn   func(d *Decl) error
}

func (m MakerFuncs) Create(d *Decl) error { return m.CreateFn(d) }
func (m MakerFuncs) Open(d *Decl) error   { return m.OpenFn(d) }

// Make gives d its object through the host and raises a Lua error when
// that fails. It reports whether an object exists (false while checking).
func (e *Env) Make(L *lua.LState, d *Decl, m Maker) bool {
	made, err := e.Host.Make(d, m)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	return made
}

// memfdObject is an ipc object that lives in one memfd (role "mem") and
// records its waits in the status table.
type memfdObject interface {
	comparable
	File() *os.File
	SetStatus(ws *ipc.WaitStatus, object int32)
}

// makeInMemfd is Make for the kinds whose object lives in one memfd
// (semaphore, mutex, cond, barrier): create makes it in the parent, open
// maps the inherited memfd in a child; either way *dst is set and told
// this process's status slot. It reports whether an object exists.
func makeInMemfd[T memfdObject](L *lua.LState, e *Env, d *Decl, dst *T, create func() (T, error), open func(*os.File) (T, error)) bool {
	if !e.Make(L, d, memfdMaker(d, dst, create, open)) {
		return false
	}
	(*dst).SetStatus(e.Slot, int32(d.Index))
	return true
}

// memfdMaker is the Maker of an object in one memfd, without a status slot
// (shm, shared).
func memfdMaker[T interface{ File() *os.File }](d *Decl, dst *T, create func() (T, error), open func(*os.File) (T, error)) Maker {
	return MakerFuncs{
		CreateFn: func(d *Decl) error {
			v, err := create()
			if err != nil {
				return err
			}
			*dst = v
			d.AddFile("mem", v.File(), "")
			return nil
		},
		OpenFn: func(d *Decl) error {
			f := d.File("mem")
			if f == nil {
				return fmt.Errorf("%s: this process did not inherit it", d.Describe())
			}
			v, err := open(f)
			if err != nil {
				return err
			}
			*dst = v
			return nil
		},
	}
}

// parentHost creates every object.
type parentHost struct{}

// ParentHost is the supervisor's host: declarations create objects.
func ParentHost() Host { return &parentHost{} }

func (*parentHost) Role() Role                          { return RoleParent }
func (*parentHost) Declared(*lua.LState, *Decl)         {}
func (*parentHost) Make(d *Decl, m Maker) (bool, error) { return true, m.Create(d) }
func (*parentHost) RunDir() (*ipc.RunDir, error)        { return ipc.NewRunDir() }

// checkHost records declarations and makes nothing.
type checkHost struct{}

// CheckHost is `ipcscript check`'s host: declarations are only listed.
func CheckHost() Host { return checkHost{} }

func (checkHost) Role() Role                      { return RoleCheck }
func (checkHost) Declared(*lua.LState, *Decl)     {}
func (checkHost) Make(*Decl, Maker) (bool, error) { return false, nil }
func (checkHost) RunDir() (*ipc.RunDir, error) {
	return nil, fmt.Errorf("no run directory while checking a script")
}

// childHost binds declarations to what the parent handed over.
type childHost struct {
	m    *Manifest
	self string
	next int // index of the next declaration to bind
}

// ChildHost is the host of a child launched with manifest m.
func ChildHost(m *Manifest) Host { return &childHost{m: m, self: m.Self} }

func (*childHost) Role() Role                          { return RoleChild }
func (*childHost) Make(d *Decl, m Maker) (bool, error) { return true, m.Open(d) }

func (h *childHost) Declared(L *lua.LState, d *Decl) {
	m := h.m
	if h.next >= len(m.Decls) {
		L.RaiseError("declarations differ between the parent and process %q: %s %q at %s was not declared by the parent (it declared %d objects and processes)",
			h.self, d.Kind, d.Name, d.Line, len(m.Decls))
	}
	p := m.Decls[h.next]
	if p.Kind != d.Kind || p.Name != d.Name || p.Spec != d.Spec {
		L.RaiseError("declarations differ between the parent and process %q: declaration %d is %s at %s in the parent but %s at %s here; declarations must be the same in every run of the script",
			h.self, h.next+1, describe(p.Kind, p.Name, p.Spec), p.Line, describe(d.Kind, d.Name, d.Spec), d.Line)
	}
	d.Files = inherited(p)
	h.next++
}

func (h *childHost) RunDir() (*ipc.RunDir, error) {
	if h.m.RunDir == "" {
		return nil, fmt.Errorf("the parent created no run directory")
	}
	return ipc.OpenRunDir(h.m.RunDir)
}

// complete reports a declaration of the parent this child never made.
func (h *childHost) complete() error {
	if h.next != len(h.m.Decls) {
		p := h.m.Decls[h.next]
		return fmt.Errorf("declarations differ between the parent and process %q: the parent declared %s at %s, which this process never declared before ipc.run()",
			h.self, describe(p.Kind, p.Name, p.Spec), p.Line)
	}
	return nil
}

// implicit builds the implicit objects the manifest lists.
func (h *childHost) implicit() []*Decl {
	var ds []*Decl
	for i, md := range h.m.Implicit {
		d := &Decl{Index: -1 - i, Kind: md.Kind, Name: md.Name, Line: "(implicit)"}
		if md.Index != 0 {
			d.Index = md.Index
		}
		d.Files = inherited(md)
		ds = append(ds, d)
	}
	return ds
}

// inherited wraps the descriptors a manifest entry lists.
func inherited(md ManifestDecl) []DeclFile {
	var fs []DeclFile
	for _, f := range md.FDs {
		fs = append(fs, DeclFile{Role: f.Role, File: os.NewFile(uintptr(f.FD), fmt.Sprintf("%s %q %s", md.Kind, md.Name, f.Role))})
	}
	return fs
}
