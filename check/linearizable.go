package check

import (
	"hash/maphash"
	"reflect"
	"sort"
	"strings"
)

// Model is a sequential specification of an object: the state it starts
// in and how one operation changes it. Step says whether output is what
// the operation would return from state given input, and the next state.
// Equal compares states for the search's cache (nil: reflect.DeepEqual).
// Partition, when set, names the independent part of the object an input
// touches (a key of a map): parts are checked separately
// (P-compositionality), which keeps large histories fast.
type Model struct {
	Init      func() any
	Step      func(state, input, output any) (bool, any)
	Equal     func(a, b any) bool
	Partition func(input any) string
	// Describe, when set, shows an operation in an explanation.
	Describe func(input, output any) string
}

// Operation is one call on the object: what went in, what came out, and
// when it was called and returned.
type Operation struct {
	Input, Output any
	Call, Return  int64
	Event         *Event // the span that recorded it, when there is one
}

// LinearizableResult says why a history is not linearizable: the longest
// order of operations the search could justify, and the operation it
// could not place after it.
type LinearizableResult struct {
	OK      bool
	Partial []int // indexes into the part's operations, in linearization order
	Stuck   int   // the operation no order could place (-1: none)
	Part    []Operation
	Key     string
}

// Linearizable checks the spans labelled object: each span's Args are the
// operation's input (one value, or a list when there are several), its
// Results the output.
func (t *Trace) Linearizable(object string, m Model) *Violation {
	var ops []Operation
	for _, e := range t.Spans(object) {
		ops = append(ops, Operation{Input: one(listField(e, "args")), Output: one(listField(e, "results")), Call: e.Time, Return: e.End, Event: e})
	}
	if len(ops) == 0 {
		return t.nothing("linearizable", fmtf("no span labelled %q", object))
	}
	r := CheckOperations(m, ops)
	if r.OK {
		return nil
	}
	desc := func(o Operation) string {
		if m.Describe != nil {
			return m.Describe(o.Input, o.Output)
		}
		return fmtf("%v -> %v", o.Input, o.Output)
	}
	var keys []*Event
	var order []string
	from := max(0, len(r.Partial)-5)
	for _, i := range r.Partial[from:] {
		o := r.Part[i]
		order = append(order, desc(o))
		if o.Event != nil {
			keys = append(keys, o.Event)
		}
	}
	stuck := r.Part[r.Stuck]
	if stuck.Event != nil {
		keys = append(keys, stuck.Event)
	}
	where := ""
	if r.Key != "" {
		where = fmtf(" (part %q)", r.Key)
	}
	prefix := "no operation could be placed first"
	if len(r.Partial) > 0 {
		prefix = fmtf("the longest order found places %d operations, ending ", len(r.Partial))
		if from > 0 {
			prefix += "... "
		}
		prefix += strings.Join(order, ", ")
	}
	who := ""
	if stuck.Event != nil {
		who = " by " + stuck.Event.Proc
	}
	v := t.violation("linearizable", fmtf("the operations on %q%s are not linearizable: %s; then %s%s cannot be placed in any order that respects real time", object, where, prefix, desc(stuck), who), keys...)
	return v
}

// listField reads a span's arguments or results: the list ipc.span
// recorded in the event's fields.
func listField(e *Event, key string) []any {
	switch v := e.Fields[key].(type) {
	case []any:
		return v
	case nil:
		return nil
	default:
		return []any{v}
	}
}

func one(vs []any) any {
	switch len(vs) {
	case 0:
		return nil
	case 1:
		return vs[0]
	}
	return vs
}

// CheckOperations decides whether the history is linearizable against m.
func CheckOperations(m Model, ops []Operation) LinearizableResult {
	parts := map[string][]Operation{}
	var keys []string
	for _, o := range ops {
		k := ""
		if m.Partition != nil {
			k = m.Partition(o.Input)
		}
		if _, ok := parts[k]; !ok {
			keys = append(keys, k)
		}
		parts[k] = append(parts[k], o)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := checkPart(m, parts[k])
		if !r.OK {
			r.Key = k
			return r
		}
	}
	return LinearizableResult{OK: true, Stuck: -1}
}

// node is an entry of the search's list: a call (match = its return) or
// a return (match = nil).
type node struct {
	id         int
	call       bool
	match      *node
	prev, next *node
}

type bitset []uint64

func (b bitset) set(i int)   { b[i/64] |= 1 << (i % 64) }
func (b bitset) clear(i int) { b[i/64] &^= 1 << (i % 64) }
func (b bitset) clone() bitset {
	return append(bitset(nil), b...)
}
func (b bitset) equal(c bitset) bool {
	for i := range b {
		if b[i] != c[i] {
			return false
		}
	}
	return true
}

var seed = maphash.MakeSeed()

func (b bitset) hash() uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	for _, w := range b {
		var buf [8]byte
		for i := range buf {
			buf[i] = byte(w >> (8 * i))
		}
		h.Write(buf[:])
	}
	return h.Sum64()
}

// checkPart is Lowe's refinement of the Wing–Gong search, as Porcupine
// does it: walk the calls in time order, try to linearize the first
// pending call whose step the model accepts, lift it out of the list, and
// backtrack when a return is reached before its call was linearized. A
// cache of (linearized set, state) pairs prunes configurations already
// explored.
func checkPart(m Model, ops []Operation) LinearizableResult {
	n := len(ops)
	type entry struct {
		at   int64
		call bool
		id   int
	}
	es := make([]entry, 0, 2*n)
	for i, o := range ops {
		es = append(es, entry{o.Call, true, i}, entry{o.Return, false, i})
	}
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].at != es[j].at {
			return es[i].at < es[j].at
		}
		return es[i].call && !es[j].call // a call and a return at once: concurrent
	})
	head := &node{id: -1}
	calls := make([]*node, n)
	returns := make([]*node, n)
	prev := head
	for _, e := range es {
		nd := &node{id: e.id, call: e.call, prev: prev}
		prev.next = nd
		prev = nd
		if e.call {
			calls[e.id] = nd
		} else {
			returns[e.id] = nd
		}
	}
	for i := range calls {
		calls[i].match = returns[i]
	}
	equal := m.Equal
	if equal == nil {
		equal = func(a, b any) bool { return reflect.DeepEqual(a, b) }
	}
	type cached struct {
		lin   bitset
		state any
	}
	type frame struct {
		n     *node
		state any
	}
	cache := map[uint64][]cached{}
	var stack []frame
	lin := make(bitset, (n+63)/64)
	state := m.Init()
	best := LinearizableResult{Stuck: -1, Part: ops}
	e := head.next
	for head.next != nil {
		if e.call {
			ok, next := m.Step(state, ops[e.id].Input, ops[e.id].Output)
			if ok {
				nl := lin.clone()
				nl.set(e.id)
				h := nl.hash()
				seen := false
				for _, c := range cache[h] {
					if c.lin.equal(nl) && equal(c.state, next) {
						seen = true
						break
					}
				}
				if !seen {
					cache[h] = append(cache[h], cached{nl, next})
					stack = append(stack, frame{e, state})
					state = next
					lin.set(e.id)
					lift(e)
					e = head.next
					continue
				}
			}
			e = e.next
			continue
		}
		// A return whose call is not linearized: this prefix cannot go on.
		if len(stack) >= len(best.Partial) && (best.Stuck < 0 || len(stack) > len(best.Partial)) {
			best.Partial = best.Partial[:0]
			for _, f := range stack {
				best.Partial = append(best.Partial, f.n.id)
			}
			best.Stuck = e.id
		}
		if len(stack) == 0 {
			return best
		}
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		state = top.state
		lin.clear(top.n.id)
		unlift(top.n)
		e = top.n.next
	}
	return LinearizableResult{OK: true, Stuck: -1, Part: ops}
}

func lift(e *node) {
	e.prev.next = e.next
	e.next.prev = e.prev
	m := e.match
	m.prev.next = m.next
	if m.next != nil {
		m.next.prev = m.prev
	}
}

func unlift(e *node) {
	m := e.match
	m.prev.next = m
	if m.next != nil {
		m.next.prev = m
	}
	e.prev.next = e
	e.next.prev = e
}
