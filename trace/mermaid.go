package trace

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// WriteMermaid writes t as a Mermaid sequenceDiagram: a participant per
// process in declaration order, an async arrow (-)) per message from its
// sender to the process that received it, drawn where it was received,
// and notes for waits, locks, marks, spans and the process's life. When
// the run has more than limit events (limit > 0) only the first and last
// limit/2 are drawn, with a note saying how many were left out.
func WriteMermaid(w io.Writer, t *Trace, limit int) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "sequenceDiagram")
	for i, p := range t.Procs {
		fmt.Fprintf(bw, "    participant P%d as %s\n", i, mermaidText(p.Name))
	}
	ev := t.Events
	idx := t.Index()
	cut, skipFrom, skipTo := false, 0, 0
	if limit > 0 && len(ev) > limit {
		cut = true
		skipFrom, skipTo = limit/2, len(ev)-(limit-limit/2)
	}
	all := fmt.Sprintf("P0,P%d", max(len(t.Procs)-1, 0))
	if len(t.Procs) == 1 {
		all = "P0"
	}
	for i := range ev {
		if cut && i == skipFrom {
			fmt.Fprintf(bw, "    Note over %s: %d events left out (the first %d and last %d of %d are shown; --trace-limit)\n",
				all, skipTo-skipFrom, skipFrom, len(ev)-skipTo, len(ev))
		}
		if cut && i >= skipFrom && i < skipTo {
			continue
		}
		e := &ev[i]
		if isMessage(e) && e.Cause != nil && e.Cause.P != e.P {
			from := e.Cause.P
			label := "message"
			if j, ok := idx[*e.Cause]; ok {
				s := &ev[j]
				label = s.Object
				if s.Kind == "inbox" || label == "" {
					label = "direct"
				}
				if s.Type != "" {
					label += " " + s.Type
				}
			}
			if e.Len != 0 {
				label += fmt.Sprintf(" (%d B)", e.Len)
			}
			fmt.Fprintf(bw, "    P%d-)P%d: %s\n", from, e.P, mermaidText(label))
			continue
		}
		if n := mermaidNote(e); n != "" {
			fmt.Fprintf(bw, "    Note over P%d: %s\n", e.P, mermaidText(n))
		}
	}
	return bw.Flush()
}

// isMessage reports whether e received a message (one arrow each).
func isMessage(e *Event) bool {
	return (e.Op == OpReceive || e.Op == OpSelect) && e.Msg != nil && e.Outcome == ""
}

func mermaidNote(e *Event) string {
	obj := e.Object
	switch e.Op {
	case OpSend, OpReceive, OpSelect:
		if e.Outcome == "" {
			return "" // the arrow says it
		}
		return e.Op + " " + obj + ": " + e.Outcome
	case OpWait, OpLock, OpAccept, OpConnect:
		s := e.Op + " " + obj
		if e.Outcome != "" {
			s += ": " + e.Outcome
		}
		if e.Interval() {
			s += fmt.Sprintf(" (blocked %s)", fmtDur(e.End-e.Time))
		}
		return s
	case OpPost, OpUnlock, OpSignal, OpBroadcast, OpArrive, OpRendezvous:
		return e.Op + " " + obj
	case OpRead, OpWrite:
		if e.Kind == "shm" {
			return ""
		}
		s := fmt.Sprintf("%s %s %s (%d B)", e.Op, e.Kind, obj, e.Len)
		if e.Outcome != "" {
			s += ": " + e.Outcome
		}
		return s
	case OpMark:
		return "mark " + e.Label
	case OpSpan:
		return fmt.Sprintf("span %s (%s)", e.Label, fmtDur(e.End-e.Time))
	case OpStart, OpSpawn:
		return "" // the participant line says it
	case OpExit, OpKill, OpStop, OpDeadlock, OpExpect, OpOverflow:
		s := e.Op
		if c, ok := e.Fields["code"]; ok && e.Op == OpExit && e.Label == "" {
			s += fmt.Sprintf(" %v", c)
		}
		if e.Label != "" {
			s += " " + e.Label
		}
		if e.Outcome != "" {
			s += " " + e.Outcome
		}
		return s
	}
	return ""
}

func fmtDur(ns int64) string {
	switch {
	case ns < 1000:
		return fmt.Sprintf("%d ns", ns)
	case ns < 1000_000:
		return fmt.Sprintf("%.1f µs", float64(ns)/1e3)
	case ns < 1000_000_000:
		return fmt.Sprintf("%.1f ms", float64(ns)/1e6)
	}
	return fmt.Sprintf("%.2f s", float64(ns)/1e9)
}

// mermaidText makes s safe in a Mermaid message or note: no line breaks,
// no characters the parser treats as syntax.
func mermaidText(s string) string {
	r := strings.NewReplacer("\n", " ", "\r", " ", ";", "#59;", "#", "#35;")
	s = r.Replace(s)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
