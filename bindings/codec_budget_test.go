package bindings

import (
	"encoding/binary"
	"runtime"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// TestCodecDecodeAllocationBounded: a hostile 8 MiB body of empty arrays
// (one byte each) cost the receiver 1.27 GB and 5 s before decoding had a
// budget; now it is refused, having allocated at most a small multiple of
// its size.
func TestCodecDecodeAllocationBounded(t *testing.T) {
	const n = 8<<20 - 5
	body := make([]byte, 5, 8<<20)
	body[0] = mpArray32
	binary.BigEndian.PutUint32(body[1:], n)
	body = append(body, []byte(strings.Repeat("\x90", n))...) // n empty fixarrays
	L := lua.NewState()
	defer L.Close()
	dec := newBodyDecoder()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := dec.decode(L, body)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "to decode") {
		t.Fatalf("decoding %d empty arrays: err = %v, want a refusal", n, err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("refused after allocating %d MiB for a %d MiB body (%.1fx)", alloc>>20, len(body)>>20, float64(alloc)/float64(len(body)))
	if limit := uint64(64 * len(body)); alloc > limit {
		t.Fatalf("allocated %d bytes decoding a %d-byte body: more than 64x", alloc, len(body))
	}
}

// TestCodecDecodeBudgetKeepsOrdinaryBodies: bodies a script sends (many
// small tables, long strings, number arrays) are within the budget.
func TestCodecDecodeBudgetKeepsOrdinaryBodies(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	for _, expr := range []string{
		`(function() local t = {} for i = 1, 20000 do t[i] = {x = i, y = "p"} end return t end)()`,
		`(function() local t = {} for i = 1, 200000 do t[i] = i end return t end)()`,
		`string.rep("x", 4194304)`,
		`(function() local t = {} for i = 1, 5000 do t[i] = {} end return t end)()`,
	} {
		v := luaValue(t, L, expr)
		enc, dec := newBodyEncoder(), newBodyDecoder()
		b, err := enc.encode(v, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dec.decode(L, b); err != nil {
			t.Errorf("%.60s: %v", expr, err)
		}
	}
}
