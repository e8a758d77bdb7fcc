package runtime

import (
	"fmt"
	"github.com/ipcscript/ipcscript/bindings"

	"reflect"
	"testing"
)

// FuzzManifest: no input makes decodeManifest panic, and whatever it
// accepts is a manifest the child can use (validate holds) and survives a
// round trip through encodeManifest unchanged.
func FuzzManifest(f *testing.F) {
	good := &bindings.Manifest{
		RunID: "abc", RunDir: "/tmp/ipcscript-abc", Script: "x.lua", Args: []string{"a"},
		Self: "w.1", Ctl: 3, Status: 4, Source: 5,
		Procs: []bindings.ManifestProc{{Name: "w.1", Group: "w", Index: 1, Count: 2}, {Name: "w.2", Group: "w", Index: 2, Count: 2}},
		Decls: []bindings.ManifestDecl{{Kind: "pipe", Name: "#1", Line: "x.lua:3", FDs: []bindings.ManifestFD{{Role: "r", FD: 6}}}},
	}
	f.Add(encodeManifest(good))
	f.Add(encodeManifest(manifest64()))
	f.Add("v3\nfds 3 4 5\nself \"a\"\nproc \"a\" \"a\" 1 1 0 1\n")
	f.Add("v3\nfds 3 4 5\nself \"a\"\nproc \"a\" \"a\" 5 1\n")
	f.Add("v3\nfds -1 4 5\nself \"a\"\nproc \"a\" \"a\" 1 1\n")
	f.Add("v3\nfds 3 4 5\nself \"a\"\nproc \"a\" \"a\" 1 1\ndecl \"pipe\" \"#1\" \"x\" \"\" \"r\" -7\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := decodeManifest(s)
		if err != nil {
			return
		}
		if err := validateManifest(m); err != nil {
			t.Fatalf("accepted an invalid manifest: %v", err)
		}
		again, err := decodeManifest(encodeManifest(m))
		if err != nil {
			t.Fatalf("re-decoding what Encode wrote: %v", err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(m)) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", again, m)
		}
	})
}

// normalize makes empty and nil maps and slices compare equal.
func normalize(m *bindings.Manifest) *bindings.Manifest {
	c := *m
	fix := func(ds []bindings.ManifestDecl) []bindings.ManifestDecl {
		var out []bindings.ManifestDecl
		for _, d := range ds {
			if len(d.FDs) == 0 {
				d.FDs = nil
			}
			out = append(out, d)
		}
		return out
	}
	c.Decls, c.Implicit = fix(c.Decls), fix(c.Implicit)
	if len(c.Args) == 0 {
		c.Args = nil
	}
	if len(c.Procs) == 0 {
		c.Procs = nil
	}
	return &c
}

func TestManifestRefusesForgeries(t *testing.T) {
	for _, bad := range []string{
		"v3\nself \"a\"\nproc \"a\" \"a\" 1 1\n",                                                      // no fds
		"v3\nfds -1 4 5\nself \"a\"\nproc \"a\" \"a\" 1 1\n",                                          // negative fd
		"v3\nfds 3 4 5\nself \"b\"\nproc \"a\" \"a\" 1 1\n",                                           // self not a process
		"v3\nfds 3 4 5\nself \"a\"\nproc \"a\" \"a\" 2 1\n",                                           // index > count
		"v3\nfds 3 4 5\nself \"a\"\nproc \"a\" \"a\" 1 1\ndecl \"pipe\" \"#1\" \"x\" \"\" \"r\" -7\n", // negative object fd
		// A whole group's members are checked as one (validate's spans).
		"v3\nfds 3 4 5\nself \"w.3\"\ngroup \"w\" 2\n",                                                 // self beyond the group
		"v3\nfds 3 4 5\nself \"w.0\"\ngroup \"w\" 2\n",                                                 // no member 0
		"v3\nfds 3 4 5\nself \"w.01\"\ngroup \"w\" 2\n",                                                // not a member's name
		"v3\nfds 3 4 5\nself \"v.1\"\ngroup \"w\" 2\n",                                                 // another group's
		"v3\nfds 3 4 5\nself \"w.1\"\ngroup \"w\" 1048577\n",                                           // slots beyond the table
		"v3\nfds 3 4 5\nself \"w.1\"\ngroup \"w\" 2\nimplicits \"inbox\" \"x\" \"\" \"w\" 0 2\n",       // no member 0
		"v3\nfds 3 4 5\nself \"w.1\"\ngroup \"w\" 2\nimplicits \"inbox\" \"x\" \"\" \"w\" 1048575 2\n", // members beyond any count
	} {
		if _, err := decodeManifest(bad); err == nil {
			t.Errorf("decodeManifest(%q) succeeded", bad)
		}
	}
	for _, good := range []string{
		"v3\nfds 3 4 5\nself \"w.2\"\ngroup \"w\" 2\n",
		"v3\nfds 3 4 5\nself \"w.10\"\nproc \"a\" \"a\" 1 1 0 1\ngroup \"w\" 12\nimplicits \"inbox\" \"x\" \"\" \"w\" 2 11\n",
	} {
		m, err := decodeManifest(good)
		if err != nil {
			t.Errorf("decodeManifest(%q): %v", good, err)
			continue
		}
		if err := validateManifest(m); err != nil {
			t.Errorf("decodeManifest(%q) made an invalid manifest: %v", good, err)
		}
	}
}

// TestManifestGroupNames: a group line's members are named as bindings
// names them (groupMember), across the widths of their indexes.
func TestManifestGroupNames(t *testing.T) {
	for _, count := range []int{2, 9, 10, 11, 99, 100, 101, 1234} {
		m, err := decodeManifest(fmt.Sprintf("v3\nfds 3 4 5\nself \"w.%d\"\nproc \"a\" \"a\" 1 1 0 1\ngroup \"w\" %d\n", count, count))
		if err != nil {
			t.Fatal(err)
		}
		for j, p := range m.Procs[1:] {
			if want := groupMember("w", j+1); p.Name != want || p.Index != j+1 || p.Slot != j+1 || p.Serial != j+2 {
				t.Fatalf("count %d: member %d is %+v, want %s", count, j+1, p, want)
			}
		}
	}
}

// FuzzSplitFields: splitFields's plain-ASCII shortcut reads every line as
// strconv alone would.
func FuzzSplitFields(f *testing.F) {
	for _, s := range []string{`"a" 1 "b c"`, `"a""b"`, `"a"b`, `"x\"y" "z"`, `"é" "\t"`, `"a" -3 "" ""`, `"a`, `"a" `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := splitFields(nil, s)
		want, werr := splitFieldsAs(nil, s, false)
		if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("splitFields(%q) = %v, %v; strconv reads %v, %v", s, got, err, want, werr)
		}
	})
}
