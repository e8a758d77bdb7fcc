package check

import "sort"

// Race is two accesses to overlapping bytes of one shared memory object,
// from different processes, at least one a write, not both atomic, that
// nothing ordered.
type Race struct {
	Object       string
	Off, Len     int64  // the bytes both touched
	A, B         *Event // A began first
	SyncA, SyncB *Event // the last synchronization each side did before it (nil: none)
}

// Races finds the data races in the trace's shared memory accesses
// (events with Access set), once per pair of source lines, as Go's race
// detector reports them. Atomic operations (add, cas) synchronize: each
// one happens after the earlier atomic operations on the same bytes, so a
// lock or flag built from them orders what it guards.
//
// It is a FastTrack-style sweep in time order (a topological order of
// happens-before, since one clock serves every process): per byte, the
// last write and the last read of each process since it.
func (t *Trace) Races() []Race {
	clock := t.atomicClocks()
	before := func(a, b *Event) bool {
		if a.P == b.P {
			return Before(a, b)
		}
		ca, cb := clock(a), clock(b)
		own := ca.Get(a.P)
		return own > 0 && own <= cb.Get(a.P)
	}
	// shadow[object][byte]: the last write and, since it, the last read
	// of each process (a short list: a run has few processes).
	type cell struct {
		w     *Event
		reads []*Event
	}
	shadow := map[string][]cell{}
	lastSync := map[int]*Event{}
	syncAt := make([]*Event, len(t.Events))
	seen := map[[2]string]bool{}
	var out []Race
	report := func(a, b *Event) {
		key := [2]string{a.Where, b.Where}
		if key[1] < key[0] {
			key[0], key[1] = key[1], key[0]
		}
		if seen[key] {
			return
		}
		seen[key] = true
		lo, hi := max(a.Off, b.Off), min(a.Off+a.Len, b.Off+b.Len)
		out = append(out, Race{Object: b.Object, Off: lo, Len: hi - lo, A: a, B: b, SyncA: syncAt[a.ID], SyncB: syncAt[b.ID]})
	}
	conflict := func(prev, e *Event) bool {
		return prev != nil && prev.P != e.P && !(prev.Access == Atomic && e.Access == Atomic) && !before(prev, e)
	}
	for _, e := range t.Events {
		if e.Access == NoAccess {
			if e.IsSync() {
				lastSync[e.P] = e
			}
			continue
		}
		if e.Off < 0 || e.Len <= 0 || e.Off+e.Len > 1<<32 {
			continue // not an access the shm would have allowed
		}
		syncAt[e.ID] = lastSync[e.P]
		mem := shadow[e.Object]
		if need := int(e.Off + e.Len); need > len(mem) {
			mem = append(mem, make([]cell, need-len(mem))...)
			shadow[e.Object] = mem
		}
		for off := e.Off; off < e.Off+e.Len; off++ {
			c := &mem[off]
			if conflict(c.w, e) {
				report(c.w, e)
			}
			if e.Access == Read {
				replaced := false
				for i, r := range c.reads {
					if r.P == e.P {
						c.reads[i], replaced = e, true
						break
					}
				}
				if !replaced {
					c.reads = append(c.reads, e)
				}
				continue
			}
			for _, r := range c.reads {
				if conflict(r, e) {
					report(r, e)
				}
			}
			c.w, c.reads = e, c.reads[:0]
		}
		if e.Access == Atomic {
			lastSync[e.P] = e
		}
	}
	return out
}

// atomicClocks returns each event's vector clock with the order atomic
// operations add: an atomic operation on some bytes acquires what every
// earlier atomic operation on those bytes had seen. What a process learns
// that way travels on with its later messages, posts, unlocks: an event's
// clock is joined with the augmented clock of the latest event it had
// seen of every process. Without atomic operations the recorded clocks
// are returned as they are.
func (t *Trace) atomicClocks() func(*Event) VC {
	hasAtomic := false
	for _, e := range t.Events {
		hasAtomic = hasAtomic || e.Access == Atomic
	}
	if !hasAtomic {
		return func(e *Event) VC { return e.Clock }
	}
	type seenAt struct {
		own uint64 // the process's own component
		aug VC
	}
	hist := map[int][]seenAt{}
	cur := map[int]VC{}
	loc := map[shmByte]VC{} // (object, byte) -> what atomics there have seen
	aug := make(map[*Event]VC, len(t.Events))
	for _, e := range t.Events {
		c := join(cur[e.P], e.Clock)
		for q, k := range e.Clock {
			if q == e.P || k == 0 {
				continue
			}
			h := hist[q]
			i := sort.Search(len(h), func(i int) bool { return h[i].own > k }) - 1
			if i >= 0 {
				c = join(c, h[i].aug)
			}
		}
		if e.Access == Atomic {
			for off := e.Off; off < e.Off+e.Len; off++ {
				k := shmByte{e.Object, off}
				c = join(c, loc[k])
			}
			for off := e.Off; off < e.Off+e.Len; off++ {
				loc[shmByte{e.Object, off}] = c
			}
		}
		cur[e.P] = c
		aug[e] = c
		var own uint64
		if e.P < len(e.Clock) {
			own = e.Clock[e.P]
		}
		hist[e.P] = append(hist[e.P], seenAt{own, c})
	}
	return func(e *Event) VC { return aug[e] }
}

// Explain is the race as Go's race detector would put it, in the script's
// names.
func (t *Trace) Explain(r Race) *Violation {
	kind := func(e *Event) string {
		switch e.Access {
		case Read:
			return "read"
		case Atomic:
			return "atomic " + e.Op
		}
		return "write"
	}
	sync := func(e *Event) string {
		if e == nil {
			return "no synchronization before it"
		}
		return "its last synchronization: " + t.Describe(e)
	}
	v := t.violation("race", fmtf("data race on %s %q bytes %d..%d: %s by %s (%s) and %s by %s (%s), unordered by happens-before",
		r.A.Kind, r.Object, r.Off, r.Off+r.Len-1, kind(r.A), r.A.Proc, r.A.Where, kind(r.B), r.B.Proc, r.B.Where), r.A, r.B)
	v.Details = []string{
		t.Describe(r.A) + "; " + sync(r.SyncA),
		t.Describe(r.B) + "; " + sync(r.SyncB),
	}
	// an order from a process beyond the board's lanes through a
	// semaphore, mutex, stream, cond or barrier is not in the clocks
	for _, e := range []*Event{r.A, r.B} {
		if t.Uncarried[e.P] {
			v.Details = append(v.Details, fmtf("%s was spawned beyond the clock board's lanes (the trace header's \"uncarried\"): its clock components travel with messages only, so an order through a semaphore, mutex, stream, cond or barrier from it is not seen, and this race may not be one (more lanes: a higher --max-procs, within the board's 16 MiB)", e.Proc))
		}
	}
	return v
}

type shmByte struct {
	object string
	off    int64
}

// join is the componentwise maximum of two clocks, as a new clock.
func join(a, b VC) VC { return a.Clone().Merge(b) }
