package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// writeMan writes ipcscript(1) in roff (man(7) macros) from the command
// definitions, so the page says what --help says. One page for all
// commands: they share most flags, and a reader wants them side by side.
func writeMan(w io.Writer, root *command) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p(`.TH IPCSCRIPT 1 "" "ipcscript %s" "User Commands"`, roffEscape(version))
	p(".SH NAME")
	p(`ipcscript \- %s`, roffEscape(root.short))
	p(".SH SYNOPSIS")
	for _, c := range append([]*command{root}, root.commands()...) {
		if !c.available() && c != root {
			continue
		}
		p(".B ipcscript")
		if c != root {
			p(".B %s", c.name())
		}
		if _, args, ok := strings.Cut(strings.TrimPrefix(c.use, c.name()), " "); ok {
			p(".RI %q", args)
		} else if len(c.commands()) > 0 {
			var subs []string
			for _, sub := range c.commands() {
				subs = append(subs, sub.name())
			}
			p(".RI %q", strings.Join(subs, "|"))
		}
		p(".br")
	}
	p(".SH DESCRIPTION")
	p("%s", roffText(root.long))
	p(".SH COMMANDS")
	var cmds []*command
	for _, c := range root.commands() {
		cmds = append(cmds, c)
		if c.name() != "completion" {
			cmds = append(cmds, c.commands()...) // trace convert
		}
	}
	for _, c := range cmds {
		if !c.available() {
			continue
		}
		p(".TP")
		p(`.B ipcscript %s`, roffEscape(useLine(c)[len("ipcscript "):]))
		long := c.long
		if long == "" {
			long = c.short
		}
		p("%s", roffText(long))
		if c.hasAvailableFlags() {
			p(".RS")
			writeManFlags(w, c.flags)
			p(".RE")
		}
	}
	p(".SH OPTIONS")
	p("Flags of the default command (run); flags go before the script:")
	writeManFlags(w, root.flagSet())
	p(".SH EXIT STATUS")
	for _, line := range strings.Split(strings.TrimSpace(exitCodes), "\n")[1:] {
		p("%s", roffText(strings.TrimSpace(line)))
		p(".br")
	}
	p(".SH ENVIRONMENT")
	p(".TP\n.B NO_COLOR\nWhen set, no colour in the status line.")
	p(".TP\n.B IPCSCRIPT_CPUPROFILE\nWrite a CPU profile of each process to this path plus .<process name>, in a binary built with go build -tags cpuprofile (others say that they write none).")
	p(".SH EXAMPLES")
	p(".nf")
	p("%s", roffEscape(root.example))
	p(".fi")
	p(".SH SEE ALSO")
	p("The Lua API: docs/LUA_API.md in the source tree.")
}

func writeManFlags(w io.Writer, fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		name, usage := pflag.UnquoteUsage(f)
		head := `\-\-` + roffEscape(f.Name)
		if f.Shorthand != "" {
			head = `\-` + f.Shorthand + ", " + head
		}
		if name != "" && name != "bool" {
			head += " " + `\fI` + roffEscape(name) + `\fR`
		}
		fmt.Fprintf(w, ".TP\n.B %s\n%s\n", head, roffText(usage))
	})
}

// roffEscape escapes backslashes and hyphens.
func roffEscape(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}

// roffText escapes a paragraph and keeps lines from starting with a dot or
// quote (which roff would take as a request).
func roffText(s string) string {
	lines := strings.Split(strings.TrimSpace(roffEscape(s)), "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}
