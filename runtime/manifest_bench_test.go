package runtime

import (
	"strconv"
	"testing"

	"github.com/ipcscript/ipcscript/bindings"
)

// manifest64 is the manifest of process w.1 of a run of one 64-process
// group (the launch benchmark's): every process's inbox.
func manifest64() *bindings.Manifest {
	m := &bindings.Manifest{Script: "launch.lua", Args: []string{"64"}, Self: "w.1", Ctl: 3, Status: 4, Source: 5,
		Decls: []bindings.ManifestDecl{{Kind: "process", Name: "w", Line: "launch.lua:14", Spec: "count=64"}}}
	// What the supervisor writes for w.1: its own inbox's descriptor and
	// the supervisor's, the others' inboxes without (launch.go).
	m.Implicit = append(m.Implicit, bindings.ManifestDecl{Kind: "inbox", Name: "main", Line: "(implicit)", FDs: []bindings.ManifestFD{{Role: "mem", FD: 6}}})
	for i := 1; i <= 64; i++ {
		name := "w." + strconv.Itoa(i)
		m.Procs = append(m.Procs, bindings.ManifestProc{Name: name, Group: "w", Index: i, Count: 64, Slot: i - 1, Serial: i})
		d := bindings.ManifestDecl{Kind: "inbox", Name: name, Line: "(implicit)"}
		if i == 1 {
			d.FDs = []bindings.ManifestFD{{Role: "mem", FD: 7}}
		}
		m.Implicit = append(m.Implicit, d)
	}
	return m
}

// The supervisor encodes a manifest per child, each child decodes its own.
func BenchmarkManifest64(b *testing.B) {
	m := manifest64()
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeManifest(m)
		}
	})
	s := encodeManifest(m)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeManifest(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The supervisor encodes every child's manifest into one buffer it keeps
// (prepareStart): once that buffer has grown, encoding allocates nothing,
// and the bytes are encodeManifest's.
func TestAppendManifestReusesItsBuffer(t *testing.T) {
	m := manifest64()
	buf := appendManifest(nil, m)
	if string(buf) != encodeManifest(m) {
		t.Fatalf("appendManifest and encodeManifest differ:\n%s\n%s", buf, encodeManifest(m))
	}
	if n := testing.AllocsPerRun(20, func() { buf = appendManifest(buf[:0], m) }); n != 0 {
		t.Errorf("%v allocations per encoding into a grown buffer, want 0", n)
	}
	if len(buf) > 400 {
		t.Errorf("a 64-process manifest is %d bytes, want at most 400", len(buf))
	}
}
