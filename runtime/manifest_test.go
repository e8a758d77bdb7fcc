package runtime

import (
	"github.com/ipcscript/ipcscript/bindings"

	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestManifestRoundTrip(t *testing.T) {
	m := &bindings.Manifest{
		RunID: "abc", RunDir: "/tmp/ipcscript-abc", Script: "x y.lua", Args: []string{"", "a b", "q\"uote\n"},
		Self: "worker.2", Ctl: 3, Status: 4, Source: 5,
		Procs: []bindings.ManifestProc{{Name: "worker.1", Group: "worker", Index: 1, Count: 2, Slot: 0, Serial: 1}, {Name: "worker.2", Group: "worker", Index: 2, Count: 2, Slot: 3, Serial: 9}},
		Decls: []bindings.ManifestDecl{
			{Kind: "pipe", Name: "#1", Line: "x y.lua:3", Spec: "from=a to=b", FDs: []bindings.ManifestFD{{Role: "r", FD: 6}, {Role: "w", FD: 7}}},
			{Kind: "process", Name: "worker", Line: "x.lua:4", Spec: "count=2"},
		},
		Implicit: []bindings.ManifestDecl{{Kind: "inbox", Name: "main", Line: "(implicit)", FDs: []bindings.ManifestFD{{Role: "mem", FD: 8}}},
			{Kind: "inbox", Name: "worker.2", Line: "(implicit)", FDs: []bindings.ManifestFD{{Role: "mem", FD: 9}}, Index: -7}},
	}
	got, err := decodeManifest(encodeManifest(m))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
	}
	// A whole group is one line, and comes back as its members.
	g := &bindings.Manifest{Self: "w.2", Ctl: 3, Status: 4, Source: 5, Procs: []bindings.ManifestProc{
		{Name: "main", Group: "main", Index: 1, Count: 1, Slot: 0, Serial: 1},
		{Name: "w.1", Group: "w", Index: 1, Count: 3, Slot: 1, Serial: 2}, {Name: "w.2", Group: "w", Index: 2, Count: 3, Slot: 2, Serial: 3}, {Name: "w.3", Group: "w", Index: 3, Count: 3, Slot: 3, Serial: 4},
		{Name: "x.1", Group: "x", Index: 1, Count: 2, Slot: 2, Serial: 9}, // a spawned member: its group is not whole
	}}
	enc := encodeManifest(g)
	if !strings.Contains(enc, "\ngroup \"w\" 3\n") || strings.Count(enc, "\nproc ") != 2 {
		t.Errorf("encoded as:\n%s\nwant group \"w\" on one line, main and x.1 on a proc line each", enc)
	}
	if got, err := decodeManifest(enc); err != nil || !reflect.DeepEqual(got, g) {
		t.Fatalf("round trip of a group: %v\n got %+v\nwant %+v", err, got, g)
	}
	// Members' names across the widths of their numbers (they are cut
	// from one string).
	big := &bindings.Manifest{Self: "w.105", Ctl: 3, Status: 4, Source: 5}
	for i := 1; i <= 105; i++ {
		big.Procs = append(big.Procs, bindings.ManifestProc{Name: groupMember("w", i), Group: "w", Index: i, Count: 105, Slot: i - 1, Serial: i})
	}
	if enc := encodeManifest(big); strings.Count(enc, "\ngroup ") != 1 {
		t.Errorf("encoded as:\n%s\nwant one group line", enc)
	} else if got, err := decodeManifest(enc); err != nil || !reflect.DeepEqual(got, big) {
		t.Fatalf("round trip of a 105-member group: %v\n got %+v\nwant %+v", err, got, big)
	}
	// A run of a group's inboxes without descriptors is one line too
	// (here w.2 .. w.64, after main's and w.1's own); a run of one, or
	// inboxes with descriptors, are not.
	im := manifest64()
	im.Implicit = append(im.Implicit, bindings.ManifestDecl{Kind: "inbox", Name: "v.1", Line: "(implicit)"},
		bindings.ManifestDecl{Kind: "inbox", Name: "v.2", Line: "(implicit)", FDs: []bindings.ManifestFD{{Role: "mem", FD: 92}}},
		bindings.ManifestDecl{Kind: "inbox", Name: "v.3", Line: "(implicit)", FDs: []bindings.ManifestFD{{Role: "mem", FD: 93}}},
		bindings.ManifestDecl{Kind: "inbox", Name: "u.3", Line: "(implicit)"}, bindings.ManifestDecl{Kind: "inbox", Name: "u.4", Line: "(implicit)"})
	enc = encodeManifest(im)
	if !strings.Contains(enc, "\nimplicits \"inbox\" \"(implicit)\" \"\" \"w\" 2 63\n") ||
		!strings.Contains(enc, "\nimplicits \"inbox\" \"(implicit)\" \"\" \"u\" 3 2\n") || strings.Count(enc, "\nimplicit ") != 5 {
		t.Errorf("encoded as:\n%s\nwant the inboxes of w.2 .. w.64 on one line, u.3 and u.4 on one, main, w.1, v.1, v.2 and v.3 on a line each", enc)
	}
	if got, err := decodeManifest(enc); err != nil || !reflect.DeepEqual(got, im) {
		t.Fatalf("round trip of a group's inboxes: %v\n got %+v\nwant %+v", err, got, im)
	}
	for _, bad := range []string{"", "v1\n", "v3\n", "v1\nfds 3 4 5\nself \"a\"\nproc \"a\" \"a\" 1 1\n", "v3\nfds 3 4 5\nself \"w.1\"\ngroup \"w\" 2\nimplicits \"inbox\" \"\" \"\" \"w\" 1 1\n",
		"v3\nfds 3 4 5\nself \"w.1\"\ngroup \"w\" 2\nimplicits \"inbox\" \"\" \"\" \"w\" -1 2\n",
		"v3\nfds 3 4 5\nself \"w.1\"\ngroup \"w\" 2\nimplicits \"inbox\" \"\" \"\" \"w\" 1048575 2\n",
		"v3\nfds 3 4 5\nself \"w.1\"\ngroup \"w\" 2\nimplicits \"inbox\" \"\" \"\" \"mem\" 6 \"w\" 2\n", "v3\nfds 3 4 5\nself \"w.1\"\ngroup \"w\" 1\n", "v3\nfds 3 4 5\nself \"w.1\"\ngroup \"w\" 99999999\n", "v3\nfds 3 4 5\nself \"w.1\"\ngroup 3 \"w\"\n", "v3\nfds 1 2\n", "v3\nproc \"a\" \"b\" x 1\n", "v3\nfds 3 4 5\nself \"a\"\nproc \"a\" \"a\" 1 1 0 0\n", "v3\nfds 3 4 5\nself \"a\"\nproc \"a\" \"a\" 1 1 0 1\nimplicit 2 \"inbox\" \"a\" \"\" \"\"\n", "v3\nnope 1\n", "v3\nself \"unterminated\n",
		// A declaration's roles in order, each once, as encodeManifest writes them.
		"v3\nfds 3 4 5\nself \"a\"\nproc \"a\" \"a\" 1 1 0 1\ndecl \"pipe\" \"#1\" \"x.lua:1\" \"\" \"w\" 6 \"r\" 7\n",
		"v3\nfds 3 4 5\nself \"a\"\nproc \"a\" \"a\" 1 1 0 1\ndecl \"pipe\" \"#1\" \"x.lua:1\" \"\" \"r\" 6 \"r\" 7\n"} {
		if _, err := decodeManifest(bad); err == nil {
			t.Errorf("decodeManifest(%q) succeeded", bad)
		}
	}
}

// isGroupMember says what comparing with groupMember's name says.
func TestIsGroupMember(t *testing.T) {
	names := []string{"", "w", "w.", "w.0", "w.1", "w.01", "w.10", "w.100", "w.1x", "ww.1", "w.1.1", "x.1", "w.99", "w.-1"}
	for i := -1; i <= 120; i++ {
		names = append(names, groupMember("w", i), groupMember("w.1", i))
	}
	for _, g := range []string{"w", "w.1", ""} {
		for _, name := range names {
			for i := -1; i <= 120; i++ {
				if got, want := isGroupMember(name, g, i), i >= 1 && name == groupMember(g, i); got != want {
					t.Fatalf("isGroupMember(%q, %q, %d) = %v, want %v", name, g, i, got, want)
				}
			}
		}
	}
}

// A plain success is no result message (the exit status says it); what is
// not plain is sent and reads back as it was.
func TestChildResultMessage(t *testing.T) {
	if b := (childResult{}).encode(); b != nil {
		t.Errorf("a plain success encodes to %q, want no message", b)
	}
	if r := decodeResult([]byte("ok\n")); r.Error != "" || r.Traceback != "" || r.Failed != nil {
		t.Errorf("an older child's ok reads as %+v, want a plain success", r)
	}
	for _, r := range []childResult{
		{Error: "boom"},
		{Error: "x:1: boom", Traceback: "stack traceback:\n\tx:1"},
		{Failed: []string{"a", "b \"c\""}},
	} {
		b := r.encode()
		if b == nil {
			t.Fatalf("%+v encodes to no message", r)
		}
		if got := decodeResult(b); got.Error != r.Error || got.Traceback != r.Traceback || !slices.Equal(got.Failed, r.Failed) {
			t.Errorf("%+v reads back as %+v", r, got)
		}
	}
}
