package check

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// regOp is a register operation: a write of V, or a read (V unused).
type regOp struct {
	Write bool
	V     int
}

var registerModel = Model{
	Init: func() any { return 0 },
	Step: func(state, in, out any) (bool, any) {
		op := in.(regOp)
		if op.Write {
			return true, op.V
		}
		return out.(int) == state.(int), state
	},
	Describe: func(in, out any) string {
		if op := in.(regOp); op.Write {
			return fmt.Sprintf("write(%d)", op.V)
		}
		return fmt.Sprintf("read() -> %v", out)
	},
}

// A FIFO queue: input "enq V" / "deq"; output the dequeued value or -1.
type qOp struct {
	Enq bool
	V   int
}

var queueModel = Model{
	Init: func() any { return "" },
	Step: func(state, in, out any) (bool, any) {
		s, op := state.(string), in.(qOp)
		if op.Enq {
			return true, s + fmt.Sprintf("%d,", op.V)
		}
		if s == "" {
			return out.(int) == -1, s
		}
		i := strings.IndexByte(s, ',')
		var head int
		fmt.Sscanf(s[:i], "%d", &head)
		return out.(int) == head, s[i+1:]
	},
}

func ops(spec ...[4]int) []Operation {
	var out []Operation
	for _, s := range spec {
		// {write?, value, call, return}
		var out2 any = 0
		in := regOp{Write: s[0] == 1, V: s[1]}
		if !in.Write {
			out2 = s[1]
		}
		out = append(out, Operation{Input: in, Output: out2, Call: int64(s[2]), Return: int64(s[3])})
	}
	return out
}

func TestLinearizableRegister(t *testing.T) {
	// write(1) overlaps a read that sees 0, then a read that sees 1.
	h := ops([4]int{1, 1, 0, 10}, [4]int{0, 0, 1, 3}, [4]int{0, 1, 11, 12})
	if r := CheckOperations(registerModel, h); !r.OK {
		t.Fatalf("linearizable history refused: %+v", r)
	}
}

// A stale read: write(1) returned, then write(2) returned, then a read
// (after both) returns 1.
func TestLinearizableFindsStaleRead(t *testing.T) {
	h := ops([4]int{1, 1, 0, 1}, [4]int{1, 2, 2, 3}, [4]int{0, 1, 4, 5})
	r := CheckOperations(registerModel, h)
	if r.OK {
		t.Fatal("a stale read passed")
	}
	if r.Stuck != 2 {
		t.Errorf("stuck on op %d, want the read (2)", r.Stuck)
	}

	// The same through a trace, as report.trace:linearizable sees it.
	s := newSim("w", "r")
	for _, o := range []struct {
		p        int
		in       regOp
		out      any
		from, to int64
	}{{0, regOp{true, 1}, 0, 0, 1}, {0, regOp{true, 2}, 0, 2, 3}, {1, regOp{false, 0}, 1, 4, 5}} {
		e := s.span(o.p, "reg", o.from, o.to)
		e.Fields = map[string]any{"args": []any{o.in}, "results": []any{o.out}}
	}
	mustFail(t, s.trace().Linearizable("reg", registerModel),
		"not linearizable", "write(1), write(2)", "then read() -> 1 by r cannot be placed")
}

func TestLinearizablePartitioned(t *testing.T) {
	type kv struct {
		Key   string
		Write bool
		V     int
	}
	m := Model{
		Init: func() any { return 0 },
		Step: func(state, in, out any) (bool, any) {
			op := in.(kv)
			if op.Write {
				return true, op.V
			}
			return out.(int) == state.(int), state
		},
		Partition: func(in any) string { return in.(kv).Key },
	}
	h := []Operation{
		{Input: kv{"x", true, 1}, Output: 0, Call: 0, Return: 1},
		{Input: kv{"y", false, 0}, Output: 0, Call: 2, Return: 3},
		{Input: kv{"y", true, 5}, Output: 0, Call: 2, Return: 3},
		{Input: kv{"x", false, 0}, Output: 1, Call: 4, Return: 5},
	}
	if r := CheckOperations(m, h); !r.OK {
		t.Fatalf("refused: %+v", r)
	}
	h = append(h, Operation{Input: kv{"y", false, 0}, Output: 0, Call: 6, Return: 7})
	if r := CheckOperations(m, h); r.OK || r.Key != "y" {
		t.Fatalf("stale read on y passed or blamed the wrong part: %+v", r)
	}
}

// bruteForce tries every order of the operations that respects real time.
func bruteForce(m Model, h []Operation) bool {
	n := len(h)
	used := make([]bool, n)
	var try func(state any, done int) bool
	try = func(state any, done int) bool {
		if done == n {
			return true
		}
		for i := range h {
			if used[i] {
				continue
			}
			// i may go next only if no unused op returned before i's call.
			ok := true
			for j := range h {
				if !used[j] && j != i && h[j].Return < h[i].Call {
					ok = false
					break
				}
			}
			if !ok {
				continue
			}
			good, next := m.Step(state, h[i].Input, h[i].Output)
			if !good {
				continue
			}
			used[i] = true
			if try(next, done+1) {
				return true
			}
			used[i] = false
		}
		return false
	}
	return try(m.Init(), 0)
}

func randomHistory(rng *rand.Rand, n int, queue bool) []Operation {
	var h []Operation
	for i := 0; i < n; i++ {
		call := int64(rng.Intn(20))
		ret := call + int64(rng.Intn(6))
		var in, out any
		if queue {
			if rng.Intn(2) == 0 {
				in, out = qOp{true, rng.Intn(3)}, 0
			} else {
				in, out = qOp{false, 0}, rng.Intn(4)-1
			}
		} else {
			if rng.Intn(2) == 0 {
				in, out = regOp{true, rng.Intn(3)}, 0
			} else {
				in, out = regOp{false, 0}, rng.Intn(3)
			}
		}
		h = append(h, Operation{Input: in, Output: out, Call: call, Return: ret})
	}
	return h
}

// The search agrees with trying every order, on random small histories of
// a register and of a queue (both verdicts occur).
func TestLinearizableAgreesWithBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	yes, no := 0, 0
	for i := 0; i < 3000; i++ {
		queue := i%2 == 1
		m := registerModel
		if queue {
			m = queueModel
		}
		h := randomHistory(rng, 1+rng.Intn(7), queue)
		want := bruteForce(m, h)
		got := CheckOperations(m, h).OK
		if got != want {
			t.Fatalf("history %d (%v): search says %v, brute force %v:\n%+v", i, queue, got, want, h)
		}
		if want {
			yes++
		} else {
			no++
		}
	}
	if yes < 300 || no < 300 {
		t.Fatalf("the random histories do not exercise both verdicts: %d linearizable, %d not", yes, no)
	}
}

// registerHistory is a linearizable history of n operations by procs
// clients on one register, with overlapping calls.
func registerHistory(n, procs int) []Operation {
	rng := rand.New(rand.NewSource(7))
	var h []Operation
	val := 0
	t := int64(0)
	for len(h) < n {
		// A round: each client calls at once; the writes take effect in
		// client order at the round's middle, the reads see the value
		// before or after.
		t += 10
		before := val
		for c := 0; c < procs && len(h) < n; c++ {
			if rng.Intn(2) == 0 {
				val = rng.Intn(1000)
				h = append(h, Operation{Input: regOp{true, val}, Output: 0, Call: t, Return: t + 5})
			} else {
				h = append(h, Operation{Input: regOp{false, 0}, Output: before, Call: t, Return: t + 5})
			}
		}
		_ = before
	}
	return h
}

func queueHistory(n, procs int) []Operation {
	var h []Operation
	t := int64(0)
	next, head := 0, 0
	for len(h) < n {
		t += 10
		for c := 0; c < procs && len(h) < n; c++ {
			if c%2 == 0 {
				h = append(h, Operation{Input: qOp{true, next}, Output: 0, Call: t + int64(c), Return: t + 5})
				next++
			} else if head < next-1 {
				h = append(h, Operation{Input: qOp{false, 0}, Output: head, Call: t + int64(c), Return: t + 6})
				head++
			}
		}
	}
	return h
}

func TestLinearizableLargeHistories(t *testing.T) {
	if r := CheckOperations(registerModel, registerHistory(1000, 4)); !r.OK {
		t.Fatalf("register history refused: stuck on %d after %d", r.Stuck, len(r.Partial))
	}
	if r := CheckOperations(queueModel, queueHistory(1000, 4)); !r.OK {
		t.Fatalf("queue history refused: stuck on %d after %d", r.Stuck, len(r.Partial))
	}
}

func BenchmarkLinearizableRegister1000(b *testing.B) {
	h := registerHistory(1000, 4)
	for b.Loop() {
		if !CheckOperations(registerModel, h).OK {
			b.Fatal("refused")
		}
	}
}

func BenchmarkLinearizableQueue1000(b *testing.B) {
	h := queueHistory(1000, 4)
	for b.Loop() {
		if !CheckOperations(queueModel, h).OK {
			b.Fatal("refused")
		}
	}
}
