package check

// Subset is the trace restricted to the events f matches (for checks over
// one process's or one object's events). The events are shared.
func (t *Trace) Subset(f Filter) *Trace {
	return &Trace{Events: t.Select(f), Procs: t.Procs, Start: t.Start}
}
