package runtime

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"github.com/ipcscript/ipcscript/internal/luaload"
)

// A child runs the parent's compiled chunk when it decodes and names the
// script, and compiles the source otherwise. The image here pairs the
// source `R = "source"` with a chunk compiled from `R = "chunk"`, so the
// result says which one ran.
func TestScriptImage(t *testing.T) {
	proto, err := luaload.Compile(strings.NewReader(`R = "chunk"`), "s.lua")
	if err != nil {
		t.Fatal(err)
	}
	const src = `R = "source"`
	run := func(image []byte, name string) string {
		t.Helper()
		L := lua.NewState()
		defer L.Close()
		fn, err := loadScriptImage(L, image, name)
		if err != nil {
			t.Fatal(err)
		}
		L.Push(fn)
		if err := L.PCall(0, 0, nil); err != nil {
			t.Fatal(err)
		}
		return L.GetGlobal("R").String()
	}
	good := scriptImage(src, proto)
	if got := run(good, "s.lua"); got != "chunk" {
		t.Fatalf("a good image ran the %s", got)
	}
	if got := run(good, "other.lua"); got != "source" {
		t.Fatalf("a chunk of another script name ran: %s", got)
	}
	if got := run(scriptImage(src, nil), "s.lua"); got != "source" {
		t.Fatalf("an image without a chunk ran the %s", got)
	}
	i := strings.Index(string(good), "chunk") // inside the chunk's constant
	bad := append([]byte(nil), good...)
	bad[i] = 'C'
	if got := run(bad, "s.lua"); got != "source" {
		t.Fatalf("a corrupted chunk ran: %s", got)
	}
	L := lua.NewState()
	defer L.Close()
	for _, image := range [][]byte{[]byte(src), good[:len(scriptMagic)], good[:len(scriptMagic)+1]} {
		if _, err := loadScriptImage(L, image, "s.lua"); err == nil {
			t.Fatalf("%q: accepted as a script image", image)
		}
	}
}

// A child maps the run's sealed source memfd rather than reading it, and
// reads what it cannot map: the same bytes either way.
func TestReadScriptImage(t *testing.T) {
	want := bytes.Repeat([]byte("image "), 3000)
	fd, err := unix.MemfdCreate("test:source", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	mem := os.NewFile(uintptr(fd), "memfd")
	defer mem.Close()
	if _, err := mem.Write(want); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		t.Fatal(err)
	}
	got, err := readScriptImage(mem)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("memfd: %d bytes, %v; want %d", len(got), err, len(want))
	}
	if !mapped(t, got) {
		t.Errorf("memfd: the image was read, not mapped")
	}
	// A file that shows no size (procfs) is read.
	proc, err := os.Open("/proc/self/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	want, err = os.ReadFile("/proc/self/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	got, err = readScriptImage(proc)
	if err != nil || !bytes.Equal(got, want) || len(want) == 0 {
		t.Fatalf("procfs: %q, %v; want %q", got, err, want)
	}
}

// mapped reports whether b's memory is a mapping of a file (a line of
// /proc/self/maps with an inode), not the Go heap.
func mapped(t *testing.T, b []byte) bool {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	at := uint64(uintptr(unsafe.Pointer(&b[0])))
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && l <= at && at < h {
			return strings.Contains(line, "memfd:test:source")
		}
	}
	return false
}
