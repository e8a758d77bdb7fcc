package runtime

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ipcscript/ipcscript/bindings"
)

// The parent/child protocol, one child shown. This is the one copy of the
// diagram; docs/ARCHITECTURE.md points here.
//
//	supervisor (parent)                          child (same binary, re-executed)
//	-------------------                          --------------------------------
//	run script: declarations create objects
//	ipc.run(): status table, script memfd; mark inherited fds close-on-exec
//	for each process (launch.go):
//	  socketpair(SEQPACKET) ctl ---- fd 3 -----> ctl: parent check (EOF = parent died)
//	  memfd status table ----------- fd 4 -----> its slot: state/op/object, no syscalls
//	  memfd script (sealed) -------- fd 5 -----> runs the same script (the parent's compiled
//	    chunk, then the source: script.go)
//	  declared objects' fds -------- fd 6.. ---> declarations bind to them in order
//	  its own inbox and main's ----- fd ... ---> another process's inbox: asked for
//	                                             with `req proc` at the first send there
//	  env IPCSCRIPT_CHILD = manifest ----------> marks fds 3.. close-on-exec
//	    (quoted lines, not JSON: identity,
//	     declarations, fd numbers; see
//	     encodeManifest below)
//	  stdout/stderr pipes <--------------------- output, prefixed "[name] " by the parent
//	                                             ipc.run(): body(self) runs
//	  ctl <------------------------------------- requests, any number (ctl.go): `req spawn`,
//	  ctl -------------------------------------> `req proc`, `req put`/`req take`; one reply
//	                                             each, descriptors in SCM_RIGHTS
//	  ctl <------------------------------------- result, once: lines `error "<quoted>"`,
//	                                             `failed "<quoted>"`; none for a plain
//	                                             success (EOF alone: the exit says it)
//	  wait4 <----------------------------------- exit status
//	on each exit: repair locks the dead held, release peers blocked on it
//
// Each child leads a process group of its own; stopping sends SIGTERM to
// each group, waits Options.Grace, then SIGKILL.
const envChild = "IPCSCRIPT_CHILD"

// childResult is the one message a child sends on its control socket:
// lines `error "<quoted>"`, `traceback "<quoted>"` and `failed "<quoted>"`
// (not JSON, for the reason the manifest is not). A plain success (the
// zero childResult) is no message at all: the supervisor's zero result
// and the exit status say it, and the message was a write in every child
// and a wake-up and two reads per child in the supervisor. (Older
// children sent `ok`, which reads as the zero result.)
type childResult struct {
	Error     string
	Traceback string // the Lua stack traceback of Error
	Failed    []string
}

func (r childResult) encode() []byte {
	var b []byte
	if r.Error != "" {
		b = append(b, "error "...)
		b = strconv.AppendQuote(b, r.Error)
		b = append(b, '\n')
	}
	if r.Traceback != "" {
		b = append(b, "traceback "...)
		b = strconv.AppendQuote(b, r.Traceback)
		b = append(b, '\n')
	}
	for _, f := range r.Failed {
		b = append(b, "failed "...)
		b = strconv.AppendQuote(b, f)
		b = append(b, '\n')
	}
	return b // nil: a plain success, nothing to send
}

func decodeResult(b []byte) childResult {
	var r childResult
	for _, line := range strings.Split(string(b), "\n") {
		tag, q, _ := strings.Cut(line, " ")
		v, err := strconv.Unquote(q)
		if err != nil {
			continue
		}
		switch tag {
		case "error":
			r.Error = v
		case "traceback":
			r.Traceback = v
		case "failed":
			r.Failed = append(r.Failed, v)
		}
	}
	return r
}

// The manifest. Its Go type, bindings.Manifest, stays in bindings: a
// child's host binds each declaration to the descriptors the manifest
// lists for it (bindings/host.go), ipc.process needs Self and ipc.mqueue
// the run id, and runtime imports bindings, so a type defined here would
// make bindings import runtime (a loop). What the protocol is (the diagram,
// the encoding of the manifest, the child's result) is here.
//
// The manifest travels in the child's environment as lines of quoted
// fields. It is not JSON because a child decodes it on every launch and
// encoding/json's first use (reflection, type caches) cost 75-170 µs of a
// child's ~500 µs start; this format decodes in a few µs.
//
//	v3                                 (v2: the source memfd holds a script image, script.go;
//	                                    v3: other processes' inboxes are handed over on first use)
//	run "<run id>" "<run dir>"
//	script "<name>"
//	arg "<value>"                      (one line per argument, in order)
//	self "<process name>"
//	fds <ctl> <status> <source>
//	trace <buffer> <board> <lane+1>    (only when the run is traced)
//	proc "<name>" "<group>" <index> <count> <slot> <serial>
//	                                   (a declared process not in a whole group, then a spawned process itself)
//	group "<group>" <count>            (a whole group: "<group>.1" .. "<group>.<count>", each with
//	                                    its place in the list as its slot and that plus 1 as its serial)
//	decl "<kind>" "<name>" "<line>" "<spec>" ["<role>" <fd>]...
//	implicit [<index>] "<kind>" "<name>" "<line>" "<spec>" ["<role>" <fd>]...
//	                                   (index, < 0: a spawned process's own inbox; without a
//	                                    descriptor: another process's inbox, handed over when this
//	                                    process first sends there)
//	implicits "<kind>" "<line>" "<spec>" "<group>" <from> <count>
//	                                   (count implicit lines in one: the objects of "<group>.<from>" ..
//	                                    "<group>.<from+count-1>", none with a descriptor)
//	spawnargs "<encoded args>"         (only for an instance ipc.spawn made)

// encodeManifest renders the manifest for IPCSCRIPT_CHILD.
func encodeManifest(m *bindings.Manifest) string {
	return string(appendManifest(nil, m))
}

// appendManifest appends m, encoded, to b. The supervisor encodes every
// child's manifest into one buffer it keeps and copies out the string:
// sized for a manifest that lists every process and inbox (6 KiB at 64
// processes), each builder's buffer became that child's 300-byte
// IPCSCRIPT_CHILD.
func appendManifest(b []byte, m *bindings.Manifest) []byte {
	// Fields are formatted in place: the supervisor writes a manifest per
	// child, and in an N-process run each lists N inboxes (a fresh string
	// per field was 8% of its CPU at N = 64).
	q := func(s string) { b = strconv.AppendQuote(append(b, ' '), s) }
	n := func(i int) { b = strconv.AppendInt(append(b, ' '), int64(i), 10) }
	b = append(b, "v3\nrun"...)
	q(m.RunID)
	q(m.RunDir)
	b = append(b, "\nscript"...)
	q(m.Script)
	for _, a := range m.Args {
		b = append(b, "\narg"...)
		q(a)
	}
	b = append(b, "\nself"...)
	q(m.Self)
	b = append(b, "\nfds"...)
	n(m.Ctl)
	n(m.Status)
	n(m.Source)
	if m.TraceBuf != 0 {
		b = append(b, "\ntrace"...)
		n(m.TraceBuf)
		n(m.TraceBoard)
		n(m.TraceProc)
	}
	for i := 0; i < len(m.Procs); {
		if k := wholeGroup(m.Procs[i:], i); k > 0 {
			// One line for a whole group (a count=64 group: 64 lines that
			// each child decoded were ~7% of its start).
			b = append(b, "\ngroup"...)
			q(m.Procs[i].Group)
			n(k)
			i += k
			continue
		}
		p := m.Procs[i]
		b = append(b, "\nproc"...)
		q(p.Name)
		q(p.Group)
		n(p.Index)
		n(p.Count)
		n(p.Slot)
		n(p.Serial)
		i++
	}
	decl := func(tag string, d bindings.ManifestDecl) {
		b = append(append(b, '\n'), tag...)
		if d.Index != 0 {
			n(d.Index)
		}
		q(d.Kind)
		q(d.Name)
		q(d.Line)
		q(d.Spec)
		fds := d.FDs
		if !slices.IsSortedFunc(fds, byRole) {
			fds = slices.SortedFunc(slices.Values(fds), byRole)
		}
		for _, f := range fds {
			q(f.Role)
			n(f.FD)
		}
	}
	for _, d := range m.Decls {
		decl("decl", d)
	}
	for i := 0; i < len(m.Implicit); {
		if from, k := implicitRun(m.Implicit[i:]); k > 0 {
			// One line for the inboxes of a run of a group's members,
			// which this child is not handed (launch.go): a child of a
			// 64-process run decoded 64 lines of quoted fields otherwise,
			// and the supervisor wrote them for every child.
			d := m.Implicit[i]
			g, _, _ := strings.Cut(d.Name, ".")
			b = append(b, "\nimplicits"...)
			q(d.Kind)
			q(d.Line)
			q(d.Spec)
			q(g)
			n(from)
			n(k)
			i += k
			continue
		}
		decl("implicit", m.Implicit[i])
		i++
	}
	if m.SpawnArgs != nil {
		b = append(b, "\nspawnargs"...)
		q(string(m.SpawnArgs))
	}
	return append(b, '\n')
}

// decodeManifest parses what encodeManifest wrote.
func decodeManifest(s string) (*bindings.Manifest, error) {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) == 0 || lines[0] != "v3" {
		return nil, fmt.Errorf("not a run manifest of this version (want a first line \"v3\")")
	}
	// Sized at once: a child of an N-process run reads N inbox lines.
	// (Counted over the lines: strings.Count of each tag in s searched
	// the manifest twice, ~3k instructions of a child's start.)
	var nImplicit, nDecls int
	for _, line := range lines[1:] {
		if strings.HasPrefix(line, "implicit ") {
			nImplicit++
		} else if strings.HasPrefix(line, "decl ") {
			nDecls++
		}
	}
	m := &bindings.Manifest{Implicit: sized[bindings.ManifestDecl](nImplicit), Decls: sized[bindings.ManifestDecl](nDecls)}
	var fbuf []field          // one buffer for every line's fields (values are copied out)
	var groups map[string]int // a group line's name: where its members start in m.Procs
	var checked decoded       // what group lines made, valid as made
	for i, line := range lines[1:] {
		tag, rest, _ := strings.Cut(line, " ")
		f, err := splitFields(fbuf[:0], rest)
		fbuf = f
		if err != nil {
			return nil, fmt.Errorf("manifest line %d: %v", i+2, err)
		}
		bad := func() error { return fmt.Errorf("manifest line %d: malformed %q", i+2, line) }
		switch tag {
		case "run":
			if len(f) != 2 {
				return nil, bad()
			}
			m.RunID, m.RunDir = f[0].s, f[1].s
		case "script":
			if len(f) != 1 {
				return nil, bad()
			}
			m.Script = f[0].s
		case "arg":
			if len(f) != 1 {
				return nil, bad()
			}
			m.Args = append(m.Args, f[0].s)
		case "self":
			if len(f) != 1 {
				return nil, bad()
			}
			m.Self = f[0].s
		case "fds":
			if len(f) != 3 || !f[0].num || !f[1].num || !f[2].num {
				return nil, bad()
			}
			m.Ctl, m.Status, m.Source = f[0].n, f[1].n, f[2].n
		case "trace":
			if len(f) != 3 || !f[0].num || !f[1].num || !f[2].num || f[2].n < 1 || f[2].n > maxManifestFD {
				return nil, bad()
			}
			m.TraceBuf, m.TraceBoard, m.TraceProc = f[0].n, f[1].n, f[2].n
		case "proc":
			if len(f) != 6 || !f[2].num || !f[3].num || !f[4].num || !f[5].num {
				return nil, bad()
			}
			m.Procs = append(m.Procs, bindings.ManifestProc{Name: f[0].s, Group: f[1].s, Index: f[2].n, Count: f[3].n, Slot: f[4].n, Serial: f[5].n})
		case "group":
			if len(f) != 2 || f[0].num || !f[1].num || f[1].n < 2 || f[1].n > maxManifestFD-len(m.Procs) {
				return nil, bad()
			}
			g, count := f[0].s, f[1].n
			m.Procs = slices.Grow(m.Procs, count)
			if groups == nil {
				groups = map[string]int{}
			}
			groups[g] = len(m.Procs)
			// The members' names, g.1 .. g.count, cut from one string (one
			// allocation, not one per member).
			// Each name is the one before with its index counted up in
			// place, but at 1, 10, 100, ... (strconv per member was ~25k
			// instructions of a child at 256).
			nb := make([]byte, 0, count*(len(g)+1+decimalDigits(count)))
			for j, w, next := 1, 1, 10; j <= count; j++ {
				if j == 1 || j == next {
					if j == next {
						w, next = w+1, next*10
					}
					nb = append(append(append(nb, g...), '.', '1'), "0000000"[:w-1]...)
					continue
				}
				nb = append(nb, nb[len(nb)-len(g)-1-w:]...)
				k := len(nb) - 1
				for ; nb[k] == '9'; k-- { // j-1 is not all 9s: j would be next
					nb[k] = '0'
				}
				nb[k]++
			}
			names, from := string(nb), 0
			at := len(m.Procs)
			m.Procs = m.Procs[:at+count]
			w, next := 1, 10 // the width of member j's index
			for j := range count {
				if j+1 == next {
					w, next = w+1, next*10
				}
				to := from + len(g) + 1 + w
				m.Procs[at+j] = bindings.ManifestProc{Name: names[from:to], Group: g, Index: j + 1, Count: count, Slot: at + j, Serial: at + j + 1}
				from = to
			}
			checked.procs = append(checked.procs, span{at, at + count, g})
		case "decl", "implicit":
			index := 0
			if tag == "implicit" && len(f) > 0 && f[0].num { // a spawned process's own inbox
				if index = f[0].n; index >= 0 {
					return nil, bad()
				}
				f = f[1:]
			}
			if len(f) < 4 || len(f)%2 != 0 {
				return nil, bad()
			}
			d := bindings.ManifestDecl{Kind: f[0].s, Name: f[1].s, Line: f[2].s, Spec: f[3].s, Index: index}
			if len(f) > 4 {
				d.FDs = make([]bindings.ManifestFD, 0, (len(f)-4)/2)
			}
			for j := 4; j < len(f); j += 2 {
				// Roles in order, each once (as encodeManifest writes them).
				if f[j].num || !f[j+1].num || (j > 4 && f[j].s <= f[j-2].s) {
					return nil, bad()
				}
				d.FDs = append(d.FDs, bindings.ManifestFD{Role: f[j].s, FD: f[j+1].n})
			}
			if tag == "decl" {
				m.Decls = append(m.Decls, d)
			} else {
				m.Implicit = append(m.Implicit, d)
			}
		case "implicits":
			if len(f) != 6 || f[0].num || f[1].num || f[2].num || f[3].num || !f[4].num || !f[5].num ||
				f[5].n < 2 || f[5].n > maxManifestFD || f[4].n < 1 || f[4].n > maxManifestFD-f[5].n {
				return nil, bad()
			}
			g, from, count := f[3].s, f[4].n, f[5].n
			m.Implicit = slices.Grow(m.Implicit, count)
			// The members' names as the group line made them, when it
			// did (one string per member, not two).
			var names []bindings.ManifestProc
			if at, ok := groups[g]; ok && at+from-1+count <= len(m.Procs) && m.Procs[at].Count >= from-1+count {
				names = m.Procs[at+from-1 : at+from-1+count]
			}
			at := len(m.Implicit)
			m.Implicit = m.Implicit[:at+count]
			for j := range count {
				name := ""
				if names != nil {
					name = names[j].Name
				} else {
					name = groupMember(g, from+j)
				}
				m.Implicit[at+j] = bindings.ManifestDecl{Kind: f[0].s, Name: name, Line: f[1].s, Spec: f[2].s}
			}
		case "spawnargs":
			if len(f) != 1 {
				return nil, bad()
			}
			m.SpawnArgs = []byte(f[0].s)
		default:
			return nil, fmt.Errorf("manifest line %d: unknown %q", i+2, tag)
		}
	}
	if err := validate(m, &checked); err != nil {
		return nil, fmt.Errorf("manifest: %v", err)
	}
	return m, nil
}

// decoded lists the runs of m.Procs that decodeManifest made from a
// group line, whose checks (a count in 2 .. maxManifestFD, the slots
// within maxManifestFD) already hold for every entry of the run. So
// validate checks a group's entries once, not once per member, and a
// child's decode stays near-constant in the group's size. FuzzManifest
// runs validateManifest, which checks every entry, on whatever
// decodeManifest accepts. (An implicits line's entries have no
// descriptors: nothing to check.)
type decoded struct{ procs []span }

// span is m.Procs[from:to], the members of group g.
type span struct {
	from, to int
	g        string
}

// sized is an empty slice with room for n, or nil when n is 0 (as
// appending nothing leaves it).
func sized[T any](n int) []T {
	if n == 0 {
		return nil
	}
	return make([]T, 0, n)
}

// wholeGroup returns k when procs starts with a whole group of k > 1
// members named as bindings names them (NAME.1 .. NAME.k, in order), which
// the manifest writes as one line; else 0. A field added to ManifestProc
// must be checked here (and derived by the "group" case of
// decodeManifest) or carried on the group line: TestManifestRoundTrip
// catches a field the group line drops once its processes set it.
func wholeGroup(procs []bindings.ManifestProc, at int) int {
	k := procs[0].Count
	if k < 2 || len(procs) < k {
		return 0
	}
	g := procs[0].Group
	for j, p := range procs[:k] {
		if p.Group != g || p.Count != k || p.Index != j+1 || !isGroupMember(p.Name, g, j+1) || p.Slot != at+j || p.Serial != at+j+1 {
			return 0
		}
	}
	return k
}

// implicitRun returns (from, k) when ds starts with the implicit objects
// of k > 1 consecutive members of a group, "g.from" .. "g.<from+k-1>",
// alike and without descriptors, which the manifest writes as one line;
// else k is 0.
func implicitRun(ds []bindings.ManifestDecl) (from, k int) {
	d := ds[0]
	g, _, ok := strings.Cut(d.Name, ".")
	if !ok || d.Index != 0 || len(d.FDs) != 0 || len(ds) < 2 {
		return 0, 0
	}
	if from = groupIndex(d.Name, g); from == 0 {
		return 0, 0
	}
	for _, e := range ds {
		if e.Kind != d.Kind || e.Line != d.Line || e.Spec != d.Spec || e.Index != 0 || len(e.FDs) != 0 ||
			!isGroupMember(e.Name, g, from+k) {
			break
		}
		k++
	}
	if k < 2 {
		return 0, 0
	}
	return from, k
}

// byRole orders a declaration's descriptors (ManifestDecl.FDs).
func byRole(a, b bindings.ManifestFD) int { return strings.Compare(a.Role, b.Role) }

// decimalDigits is the length of n > 0 in decimal.
func decimalDigits(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// groupMember is the name of member i of group g (bindings/process.go).
func groupMember(g string, i int) string { return g + "." + strconv.Itoa(i) }

// isGroupMember reports whether name is groupMember(g, i), without
// making that name: the supervisor asks it of every process and inbox
// in every child's manifest (wholeGroup, implicitRun), and making
// the names was ~5% of its CPU in a 256-process launch.
func isGroupMember(name, g string, i int) bool { return i >= 1 && groupIndex(name, g) == i }

// groupIndex is i when name is groupMember(g, i) for an i of at most 7
// digits (maxManifestFD has 7), else 0.
func groupIndex(name, g string) int {
	if len(name) < len(g)+2 || len(name) > len(g)+8 || name[:len(g)] != g || name[len(g)] != '.' || name[len(g)+1] == '0' {
		return 0
	}
	i := 0
	for _, c := range []byte(name[len(g)+1:]) {
		if c < '0' || c > '9' {
			return 0
		}
		i = i*10 + int(c-'0')
	}
	return i
}

// maxManifestFD bounds descriptor numbers (no process holds more).
const maxManifestFD = 1 << 20

// validateManifest checks what the child relies on, so that no manifest, however
// forged, makes it index out of range or wrap an invalid descriptor: the
// descriptors exist as numbers, this process is one of the run's, the
// process list is consistent.
func validateManifest(m *bindings.Manifest) error { return validate(m, nil) }

// validate is validateManifest but for the entries skip lists (see
// decoded), which it checks as a whole.
func validate(m *bindings.Manifest, skip *decoded) error {
	if skip == nil {
		skip = &decoded{}
	}
	fd := func(what string, n int) error {
		if n < 0 || n >= maxManifestFD {
			return fmt.Errorf("%s descriptor %d is out of range", what, n)
		}
		return nil
	}
	if m.Ctl == 0 && m.Status == 0 && m.Source == 0 {
		return fmt.Errorf("no fds line")
	}
	for _, f := range []struct {
		what string
		n    int
	}{{"control", m.Ctl}, {"status", m.Status}, {"source", m.Source}} {
		if err := fd(f.what, f.n); err != nil {
			return err
		}
	}
	if len(m.Procs) > maxManifestFD {
		return fmt.Errorf("%d processes", len(m.Procs))
	}
	self := false
	procs := skip.procs
	for i := 0; i < len(m.Procs); i++ {
		if len(procs) > 0 && procs[0].from == i {
			// Members g.1 .. g.count: this process is one when its name
			// is g.<i>, i in 1 .. count, written as strconv writes it.
			g, count := procs[0].g, procs[0].to-procs[0].from
			if j := groupIndex(m.Self, g); j > 0 && j <= count {
				self = true
			}
			i, procs = procs[0].to-1, procs[1:]
			continue
		}
		p := m.Procs[i]
		if p.Index < 1 || p.Count < 1 || p.Index > p.Count {
			return fmt.Errorf("process %q: index %d of %d", p.Name, p.Index, p.Count)
		}
		if p.Slot < 0 || p.Slot >= maxManifestFD || p.Serial < 1 {
			return fmt.Errorf("process %q: slot %d, serial %d", p.Name, p.Slot, p.Serial)
		}
		self = self || p.Name == m.Self
	}
	if !self {
		return fmt.Errorf("this process, %q, is not among the run's processes", m.Self)
	}
	for _, ds := range [][]bindings.ManifestDecl{m.Decls, m.Implicit} {
		for _, d := range ds {
			for _, f := range d.FDs {
				if f.FD >= 0 && f.FD < maxManifestFD {
					continue // valid: no name to build
				}
				if err := fd(d.Kind+" "+f.Role, f.FD); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

type field struct {
	s   string
	n   int
	num bool
}

// splitFields appends to out the space-separated quoted strings and
// integers of s.
func splitFields(out []field, s string) ([]field, error) { return splitFieldsAs(out, s, true) }

// splitFieldsAs is splitFields; with plain false every quoted field goes
// through strconv (FuzzSplitFields compares the two).
func splitFieldsAs(out []field, s string, plain bool) ([]field, error) {
	for s != "" {
		if s[0] == '"' {
			// Printable ASCII but quotes and backslashes stands for
			// itself: what strconv would return, without its two passes
			// over the field in UTF-8 (9 lines' fields were ~16k
			// instructions of every child).
			i := 1
			for plain && i < len(s) && s[i] >= ' ' && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' {
				i++
			}
			if plain && i < len(s) && s[i] == '"' && (i+1 == len(s) || s[i+1] == ' ') {
				out = append(out, field{s: s[1:i]})
				s = strings.TrimPrefix(s[i+1:], " ")
				continue
			}
			pre, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, err
			}
			v, _ := strconv.Unquote(pre)
			out = append(out, field{s: v})
			s = strings.TrimPrefix(s[len(pre):], " ")
			continue
		}
		tok, rest, _ := strings.Cut(s, " ")
		v, err := strconv.Atoi(tok)
		if err != nil {
			return nil, fmt.Errorf("bad field %q", tok)
		}
		out = append(out, field{n: v, num: true})
		s = rest
	}
	return out, nil
}
