package check

import (
	"fmt"
	"strings"
)

// Violation is a failed check: what is wrong, the events that show it, and
// the smallest window of the trace around them as a Mermaid sequence
// diagram.
type Violation struct {
	Check   string   // "exclusive", "fifo", ...
	Summary string   // one line
	Details []string // one line per event involved
	Events  []*Event // the events named in Details
	Mermaid string   // the window, as Mermaid sequenceDiagram text
}

// Error is the full explanation: the summary, the events, the window.
func (v *Violation) Error() string {
	var b strings.Builder
	b.WriteString(v.Check + ": " + v.Summary)
	for _, d := range v.Details {
		b.WriteString("\n  " + d)
	}
	if v.Mermaid != "" {
		b.WriteString("\n  the window of the trace that shows it (Mermaid):\n")
		for _, l := range strings.Split(strings.TrimRight(v.Mermaid, "\n"), "\n") {
			b.WriteString("    " + l + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// violation builds a Violation naming evs, with their window.
func (t *Trace) violation(check, summary string, evs ...*Event) *Violation {
	v := &Violation{Check: check, Summary: summary, Events: evs}
	for _, e := range evs {
		v.Details = append(v.Details, t.Describe(e))
	}
	v.Mermaid = t.Window(evs, maxWindow)
	return v
}

func fmtf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

// nothing is the violation of a check that found nothing to judge: a
// label or name that is wrong, or a run that was not recorded, must not
// pass by default.
func (t *Trace) nothing(check, what string) *Violation {
	return &Violation{Check: check, Summary: what + " was recorded (is the name right? was the run recorded: ipc.run{trace = true}?)"}
}
