package check

import "sort"

// Exclusive checks that no two spans with this label, in different
// processes, overlap in real time or are unordered by happens-before. Two
// critical sections that did not overlap only because of timing (nothing
// ordered them) fail: the next run may overlap them.
func (t *Trace) Exclusive(label string) *Violation {
	spans := t.Spans(label)
	if len(spans) == 0 {
		return t.nothing("exclusive", fmtf("no span labelled %q", label))
	}
	// If the spans of different processes are totally ordered, the order
	// agrees with their begin times, and by transitivity it is enough that
	// each span happens before the next one that begins after it.
	// prev is the span the next one must come after: within one process a
	// nested span keeps the outer one.
	var prev *Event
	for _, s := range spans {
		if prev == nil {
			prev = s
			continue
		}
		if s.P == prev.P {
			if s.End > prev.End {
				prev = s
			}
			continue
		}
		if !Before(prev, s) && !Before(s, prev) {
			return t.unordered("exclusive", prev, s)
		}
		prev = s
	}
	return nil
}

// unordered explains why two spans a, b (a begins first) conflict.
func (t *Trace) unordered(check string, a, b *Event) *Violation {
	who := fmtf("%s and %s were in span %q", a.Proc, b.Proc, a.Label)
	if a.Label != b.Label {
		who = fmtf("%s (in span %q) and %s (in span %q) were", a.Proc, a.Label, b.Proc, b.Label)
	}
	if Overlap(a, b) {
		return t.violation(check, who+" at the same time", a, b)
	}
	return t.violation(check, who+" one after the other only by timing: nothing (message, semaphore, mutex, ...) ordered the end of the first before the start of the second", a, b)
}

// ExclusiveRW checks readers/writers exclusion: a span labelled writer
// never overlaps (in real time or by being unordered) any other writer or
// reader span of another process. Readers may overlap one another.
func (t *Trace) ExclusiveRW(writer, reader string) *Violation {
	ws := t.Spans(writer)
	all := append(append([]*Event(nil), ws...), t.Spans(reader)...)
	if len(ws) == 0 {
		return t.nothing("exclusive", fmtf("no span labelled %q", writer))
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time < all[j].Time })
	for _, w := range ws {
		for _, s := range all {
			if s == w || s.P == w.P || Before(w, s) || Before(s, w) {
				continue
			}
			a, b := w, s
			if b.Time < a.Time {
				a, b = b, a
			}
			return t.unordered("exclusive", a, b)
		}
	}
	return nil
}

// Bounded checks that at most n spans with this label are ever "at once":
// no n+1 of them are pairwise unordered by happens-before (overlap in real
// time is one way to be unordered). The largest such set is a maximum
// antichain of the spans' order, found through Dilworth's theorem as a
// maximum matching (Hopcroft–Karp), then König's construction.
func (t *Trace) Bounded(label string, n int) *Violation {
	spans := t.Spans(label)
	if len(spans) == 0 {
		return t.nothing("bounded", fmtf("no span labelled %q", label))
	}
	if len(spans) <= n {
		return nil
	}
	anti := maxAntichain(spans)
	if len(anti) <= n {
		return nil
	}
	sort.SliceStable(anti, func(i, j int) bool { return anti[i].Time < anti[j].Time })
	overlapping := true
	for i := range anti {
		for j := i + 1; j < len(anti); j++ {
			overlapping = overlapping && Overlap(anti[i], anti[j])
		}
	}
	how := "with nothing ordering them (some did not overlap only by timing)"
	if overlapping {
		how = "overlapping in time"
	}
	return t.violation("bounded", fmtf("%d spans %q were at once (at most %d allowed), %s", len(anti), label, n, how), anti...)
}

// maxAntichain returns a largest set of pairwise unordered spans.
func maxAntichain(s []*Event) []*Event {
	n := len(s)
	adj := make([][]int, n) // i -> j when s[i] happens before s[j]
	for i := range s {
		for j := range s {
			if i != j && Before(s[i], s[j]) {
				adj[i] = append(adj[i], j)
			}
		}
	}
	matchL, matchR := hopcroftKarp(n, adj)
	_ = matchL
	// König: from the unmatched left vertices, alternate along unmatched
	// edges to the right and matched edges back to the left.
	visL, visR := make([]bool, n), make([]bool, n)
	var queue []int
	for u := 0; u < n; u++ {
		if matchL[u] < 0 {
			visL[u] = true
			queue = append(queue, u)
		}
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, v := range adj[u] {
			if visR[v] || matchL[u] == v {
				continue
			}
			visR[v] = true
			if w := matchR[v]; w >= 0 && !visL[w] {
				visL[w] = true
				queue = append(queue, w)
			}
		}
	}
	// Minimum vertex cover = (L not visited) + (R visited); the antichain is
	// the elements with neither copy in the cover.
	var out []*Event
	for i := 0; i < n; i++ {
		if visL[i] && !visR[i] {
			out = append(out, s[i])
		}
	}
	return out
}

// hopcroftKarp finds a maximum matching of the bipartite graph L -> R
// (both of size n) given by adj.
func hopcroftKarp(n int, adj [][]int) (matchL, matchR []int) {
	matchL, matchR = make([]int, n), make([]int, n)
	for i := range matchL {
		matchL[i], matchR[i] = -1, -1
	}
	dist := make([]int, n)
	const inf = 1 << 30
	bfs := func() bool {
		var q []int
		for u := 0; u < n; u++ {
			if matchL[u] < 0 {
				dist[u] = 0
				q = append(q, u)
			} else {
				dist[u] = inf
			}
		}
		found := false
		for len(q) > 0 {
			u := q[0]
			q = q[1:]
			for _, v := range adj[u] {
				w := matchR[v]
				if w < 0 {
					found = true
				} else if dist[w] == inf {
					dist[w] = dist[u] + 1
					q = append(q, w)
				}
			}
		}
		return found
	}
	var dfs func(u int) bool
	dfs = func(u int) bool {
		for _, v := range adj[u] {
			w := matchR[v]
			if w < 0 || dist[w] == dist[u]+1 && dfs(w) {
				matchL[u], matchR[v] = v, u
				return true
			}
		}
		dist[u] = inf
		return false
	}
	for bfs() {
		for u := 0; u < n; u++ {
			if matchL[u] < 0 {
				dfs(u)
			}
		}
	}
	return matchL, matchR
}
