package runtime

import (
	"github.com/ipcscript/ipcscript/bindings"

	"reflect"
	"testing"
)

func TestManifestRoundTrip(t *testing.T) {
	m := &bindings.Manifest{
		RunID: "abc", RunDir: "/tmp/ipcscript-abc", Script: "x y.lua", Args: []string{"", "a b", "q\"uote\n"},
		Self: "worker.2", Ctl: 3, Status: 4, Source: 5,
		Procs: []bindings.ManifestProc{{Name: "worker.1", Group: "worker", Index: 1, Count: 2}, {Name: "worker.2", Group: "worker", Index: 2, Count: 2}},
		Decls: []bindings.ManifestDecl{
			{Kind: "pipe", Name: "#1", Line: "x y.lua:3", Spec: "from=a to=b", FDs: map[string]int{"r": 6, "w": 7}},
			{Kind: "process", Name: "worker", Line: "x.lua:4", Spec: "count=2"},
		},
		Implicit: []bindings.ManifestDecl{{Kind: "inbox", Name: "main", Line: "(implicit)", FDs: map[string]int{"mem": 8}}},
	}
	got, err := decodeManifest(encodeManifest(m))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
	}
	for _, bad := range []string{"", "v2\n", "v1\nfds 1 2\n", "v1\nproc \"a\" \"b\" x 1\n", "v1\nnope 1\n", "v1\nself \"unterminated\n"} {
		if _, err := decodeManifest(bad); err == nil {
			t.Errorf("decodeManifest(%q) succeeded", bad)
		}
	}
}
