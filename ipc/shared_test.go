package ipc

import (
	"os"
	"strconv"
	"testing"
)

func init() { registerChild("shared-update", childSharedUpdate) }

var testFields = []SharedField{
	{Name: "total", Type: F64},
	{Name: "meals", Type: I32},
	{Name: "eating", Type: U8, Count: 5},
	{Name: "hi", Type: I64},
	{Name: "lo", Type: I16},
	{Name: "last", Type: U32},
}

func TestSharedLayout(t *testing.T) {
	laid, size, err := LayoutShared(testFields)
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by name, each aligned to its size.
	want := []struct {
		name string
		off  int
	}{{"eating", 0}, {"hi", 8}, {"last", 16}, {"lo", 20}, {"meals", 24}, {"total", 32}}
	for i, w := range want {
		if laid[i].Name != w.name || laid[i].Offset != w.off {
			t.Fatalf("field %d: %s@%d, want %s@%d", i, laid[i].Name, laid[i].Offset, w.name, w.off)
		}
	}
	if size != 40 {
		t.Fatalf("size %d, want 40", size)
	}
	for _, bad := range [][]SharedField{
		nil,
		{{Name: "a", Type: I32}, {Name: "a", Type: U8}},
		{{Name: "", Type: I32}},
		{{Name: "a", Type: 0}},
		{{Name: "a", Type: I8, Count: -1}},
	} {
		if _, _, err := LayoutShared(bad); err == nil {
			t.Errorf("LayoutShared(%v) accepted", bad)
		}
	}
}

// TestSharedAcrossProcesses: 4 processes each add 1000 to meals, raise hi
// to their largest value, lower lo, bump eating[i], and swap last; the
// results are exact.
func TestSharedAcrossProcesses(t *testing.T) {
	const procs, n = 4, 1000
	v, err := NewShared("vars", testFields)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var cs []*testChild
	for i := 0; i < procs; i++ {
		cs = append(cs, startChild(t, "shared-update", []*os.File{v.File()}, strconv.Itoa(i), strconv.Itoa(n)))
	}
	for _, c := range cs {
		c.wait(t)
	}
	get := func(name string, i int) Number {
		typ, off, err := v.Locate(name, i)
		if err != nil {
			t.Fatal(err)
		}
		return mustGet(t, v.Shm, typ, off)
	}
	if got := get("meals", 0); got != IntNumber(procs*n) {
		t.Fatalf("meals %v, want %d", got, procs*n)
	}
	if got := get("total", 0); got != FloatNumber(procs*n*0.5) {
		t.Fatalf("total %v, want %v", got, procs*n*0.5)
	}
	if got := get("hi", 0); got != IntNumber((procs-1)*n+n-1) {
		t.Fatalf("hi %v, want %d", got, (procs-1)*n+n-1)
	}
	if got := get("lo", 0); got != IntNumber(-((procs-1)*n + n - 1)) {
		t.Fatalf("lo %v", got)
	}
	for i := 0; i < procs; i++ {
		if got := get("eating", i); got != UintNumber(n%256) {
			t.Fatalf("eating[%d] %v, want %d", i, got, n%256)
		}
	}
	if got := get("eating", 4); got != UintNumber(0) {
		t.Fatalf("eating[4] %v, want 0", got)
	}
	// The swaps form a chain: the value left is one that a process wrote.
	last, _ := get("last", 0).Int64()
	if last < 1 || last > procs*n {
		t.Fatalf("last %d out of range", last)
	}
	// The same bytes through the plain Shm interface.
	if got := mustGet(t, v.Shm, I32, 24); got != IntNumber(procs*n) {
		t.Fatalf("meals read as bytes at 24: %v", got)
	}
	_, _, err = v.Locate("eating", 5)
	wantErr(t, err, `shared "vars": field: index 6 is outside eating[1..5]`)
	_, _, err = v.Locate("nope", 0)
	wantErr(t, err, `no field "nope"`)
	if old, _ := v.Swap(U32, 16, IntNumber(7)); old != UintNumber(uint64(last)) {
		t.Fatalf("swap returned %v, want %d", old, last)
	}
	if old, _ := v.Max(F64, 32, FloatNumber(1)); old != FloatNumber(procs*n*0.5) {
		t.Fatalf("max returned %v", old)
	}
	if got := get("total", 0); got != FloatNumber(procs*n*0.5) {
		t.Fatalf("max with a smaller value changed total to %v", got)
	}
}

func childSharedUpdate() {
	v, err := OpenShared(childFile(0), "vars", testFields)
	if err != nil {
		childFatalf("%v", err)
	}
	me, _ := strconv.Atoi(childArgs()[0])
	n, _ := strconv.Atoi(childArgs()[1])
	at := func(name string, i int) (NumType, int) {
		typ, off, err := v.Locate(name, i)
		if err != nil {
			childFatalf("%v", err)
		}
		return typ, off
	}
	for k := 0; k < n; k++ {
		val := int64(me*n + k)
		t, o := at("meals", 0)
		v.Add(t, o, IntNumber(1))
		t, o = at("total", 0)
		v.Add(t, o, FloatNumber(0.5))
		t, o = at("hi", 0)
		v.Max(t, o, IntNumber(val))
		t, o = at("lo", 0)
		v.Min(t, o, IntNumber(-val))
		t, o = at("eating", me)
		v.Add(t, o, IntNumber(1))
		t, o = at("last", 0)
		v.Swap(t, o, IntNumber(val+1))
	}
}
