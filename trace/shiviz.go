package trace

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ShivizRegex is the first line of a .shiviz file: how ShiViz parses each
// event (two lines: host and JSON vector clock, then the event's text).
const ShivizRegex = `(?<host>\S*) (?<clock>{.*})\n(?<event>.*)`

// WriteShiviz writes t as a ShiViz log: the parser regex, an empty
// execution delimiter line, then each event as "host {clock}" and a line
// describing it. Clock keys are process names; zero components are left
// out; every event's clock includes its own process.
func WriteShiviz(w io.Writer, t *Trace) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	fmt.Fprintln(bw, ShivizRegex)
	fmt.Fprintln(bw)
	var b []byte
	for i := range t.Events {
		e := &t.Events[i]
		b = append(b[:0], shivizHost(e.Proc)...)
		b = append(b, ' ', '{')
		n := 0
		for p, x := range e.VC {
			if x == 0 || p >= len(t.Procs) {
				continue
			}
			if n > 0 {
				b = append(b, ',', ' ')
			}
			n++
			b = appendString(b, shivizHost(t.Procs[p].Name))
			b = append(b, ':')
			b = strconv.AppendUint(b, x, 10)
		}
		b = append(b, '}', '\n')
		b = append(b, strings.ReplaceAll(e.Describe(), "\n", " ")...)
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// shivizHost makes a process name fit the regex's \S* host.
func shivizHost(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' {
			return '_'
		}
		return r
	}, s)
}
