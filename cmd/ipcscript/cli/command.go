package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// command is one node of the command tree: what cobra gave this package
// (github.com/spf13/cobra until issue 12), kept to the part it used, with
// cobra's rules for finding the command in the arguments, its help and
// version flags, argument checks and suggestions, so that every command,
// message and exit status stayed as they were. It left because it linked
// regexp, text/template and the unicode tables into a binary every
// process of a run starts: their package initialisation and the larger
// function table the Go runtime walks at start-up were ~1/9 of a bare
// start's instructions (callgrind).
type command struct {
	use     string // the name, then the arguments' synopsis
	short   string
	long    string
	example string
	aliases []string // names it is also found by (__complete's __completeNoDesc)
	hidden  bool

	// args checks the arguments left after the flags; nil: any.
	args func(c *command, args []string) error
	// run runs the command; nil: the command only groups others, and
	// running it shows its help.
	run func(c *command, args []string) error
	// noFlags: the command parses no flags (__complete), its arguments
	// are all for run.
	noFlags bool
	// complete offers completions of the command's arguments (__complete).
	complete func(c *command, args []string, toComplete string) ([]string, compDirective)

	flags       *pflag.FlagSet
	version     string   // the root's: adds --version when it executes
	parent      *command // nil: the root
	subs        []*command
	helpCommand *command // the root's `help`, which lists itself among the commands
	calledAs    string   // the name or alias it was found by

	out, errOut io.Writer // the root's: the command line's stdout and stderr
}

// name is the first word of use.
func (c *command) name() string {
	name, _, _ := strings.Cut(c.use, " ")
	return name
}

func (c *command) root() *command {
	for c.parent != nil {
		c = c.parent
	}
	return c
}

func (c *command) hasParent() bool { return c.parent != nil }

// path is the command as typed: "ipcscript trace convert".
func (c *command) path() string {
	if c.parent != nil {
		return c.parent.path() + " " + c.name()
	}
	return c.name()
}

// flagSet is the command's flags, made on first use; parse errors are
// returned, never printed.
func (c *command) flagSet() *pflag.FlagSet {
	if c.flags == nil {
		c.flags = pflag.NewFlagSet(c.name(), pflag.ContinueOnError)
		c.flags.SetOutput(io.Discard)
	}
	return c.flags
}

// initHelpFlag adds -h, --help, as cobra did: when the command executes
// (or is completed), or earlier where a help text must list it.
func (c *command) initHelpFlag() {
	fs := c.flagSet()
	if fs.Lookup("help") == nil {
		fs.BoolP("help", "h", false, "help for "+c.name())
		fs.SetAnnotation("help", flagSetByUs, []string{"true"})
	}
}

// initVersionFlag adds --version to a command with a version (the root),
// only when it executes: `ipcscript help` and the man page do not list it
// (as with cobra).
func (c *command) initVersionFlag() {
	if c.version == "" {
		return
	}
	fs := c.flagSet()
	if fs.Lookup("version") == nil {
		if fs.ShorthandLookup("v") == nil {
			fs.BoolP("version", "v", false, "version for "+c.name())
		} else {
			fs.Bool("version", false, "version for "+c.name())
		}
		fs.SetAnnotation("version", flagSetByUs, []string{"true"})
	}
}

// flagSetByUs marks the help and version flags, which completion treats
// as the end of a command line.
const flagSetByUs = "ipcscript_annotation_flag_set_by_cli"

func (c *command) addCommand(subs ...*command) {
	for _, s := range subs {
		s.parent = c
		c.subs = append(c.subs, s)
	}
	slices.SortFunc(c.subs, func(a, b *command) int { return strings.Compare(a.name(), b.name()) })
}

func (c *command) removeCommand(sub *command) {
	c.subs = slices.DeleteFunc(c.subs, func(s *command) bool { return s == sub })
	sub.parent = nil
}

// commands are the subcommands, sorted by name.
func (c *command) commands() []*command { return c.subs }

func (c *command) runnable() bool { return c.run != nil }

// available: listed in help and suggestions (not hidden, not the help
// command, and runnable or a group of available commands).
func (c *command) available() bool {
	if c.hidden || c.parent != nil && c.parent.helpCommand == c {
		return false
	}
	return c.runnable() || slices.ContainsFunc(c.subs, (*command).available)
}

func (c *command) hasAvailableFlags() bool {
	if c.flags == nil {
		return false
	}
	return c.flags.HasAvailableFlags()
}

// findNext is the subcommand named (or aliased) next.
func (c *command) findNext(next string) *command {
	for _, s := range c.subs {
		if s.name() == next || slices.Contains(s.aliases, next) {
			return s
		}
	}
	return nil
}

// find is the command args name, and the arguments left for it: a word
// that names a subcommand, wherever it is among the flags, selects it.
// Which words are flag values is decided with the flags of the command
// found so far (a flag it does not know is taken to have a value).
func (c *command) find(args []string) (*command, []string) {
	for {
		words := stripFlags(args, c)
		if len(words) == 0 {
			break
		}
		next := c.findNext(words[0])
		if next == nil {
			break
		}
		args = argsMinusFirstX(args, words[0], c)
		next.calledAs = words[0]
		c = next
	}
	return c, args
}

func hasNoOptDefVal(name string, fs *pflag.FlagSet) bool {
	f := fs.Lookup(name)
	return f != nil && f.NoOptDefVal != ""
}

func shortHasNoOptDefVal(name string, fs *pflag.FlagSet) bool {
	if name == "" {
		return false
	}
	f := fs.ShorthandLookup(name[:1])
	return f != nil && f.NoOptDefVal != ""
}

// stripFlags is args without flags and their values, up to "--".
func stripFlags(args []string, c *command) []string {
	if len(args) == 0 {
		return args
	}
	fs := c.flagSet()
	var words []string
	for len(args) > 0 {
		s := args[0]
		args = args[1:]
		switch {
		case s == "--":
			return words
		case strings.HasPrefix(s, "--") && !strings.Contains(s, "=") && !hasNoOptDefVal(s[2:], fs),
			strings.HasPrefix(s, "-") && !strings.Contains(s, "=") && len(s) == 2 && !shortHasNoOptDefVal(s[1:], fs):
			// A flag with its value in the next word.
			if len(args) <= 1 {
				return words
			}
			args = args[1:]
		case s != "" && !strings.HasPrefix(s, "-"):
			words = append(words, s)
		}
	}
	return words
}

// argsMinusFirstX is args without the first word x that is neither a
// flag nor a flag's value.
func argsMinusFirstX(args []string, x string, c *command) []string {
	fs := c.flagSet()
	for pos := 0; pos < len(args); pos++ {
		s := args[pos]
		switch {
		case s == "--":
			return args
		case strings.HasPrefix(s, "--") && !strings.Contains(s, "=") && !hasNoOptDefVal(s[2:], fs),
			strings.HasPrefix(s, "-") && !strings.Contains(s, "=") && len(s) == 2 && !shortHasNoOptDefVal(s[1:], fs):
			pos++
		case !strings.HasPrefix(s, "-"):
			if s == x {
				return append(slices.Clip(args[:pos]), args[pos+1:]...)
			}
		}
	}
	return args
}

// errHelp: show the command's help (and exit 0).
var errHelp = errors.New("help requested")

// execute parses the command's flags and runs it.
func (c *command) execute(args []string) error {
	c.initHelpFlag()
	c.initVersionFlag()
	fs := c.flagSet()
	if !c.noFlags {
		if err := fs.Parse(args); err != nil {
			return flagError(c, err)
		}
		if help, _ := fs.GetBool("help"); help {
			return errHelp
		}
		if c.version != "" {
			if v, _ := fs.GetBool("version"); v {
				fmt.Fprintf(c.root().out, "ipcscript %s\n", c.version)
				return nil
			}
		}
		args = fs.Args()
	}
	if !c.runnable() {
		return errHelp
	}
	if c.args != nil {
		if err := c.args(c, args); err != nil {
			return err
		}
	}
	return c.run(c, args)
}

// Argument checks.

func noArgs(c *command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q", args[0], c.path())
	}
	return nil
}

func maximumNArgs(n int) func(*command, []string) error {
	return func(_ *command, args []string) error {
		if len(args) > n {
			return fmt.Errorf("accepts at most %d arg(s), received %d", n, len(args))
		}
		return nil
	}
}

func minimumNArgs(n int) func(*command, []string) error {
	return func(_ *command, args []string) error {
		if len(args) < n {
			return fmt.Errorf("requires at least %d arg(s), only received %d", n, len(args))
		}
		return nil
	}
}

// suggestionsFor are the available commands typed is a prefix of, or
// within two edits of (case ignored).
func (c *command) suggestionsFor(typed string) []string {
	var out []string
	for _, s := range c.subs {
		if !s.available() {
			continue
		}
		if levenshtein(strings.ToLower(typed), strings.ToLower(s.name())) <= 2 ||
			strings.HasPrefix(strings.ToLower(s.name()), strings.ToLower(typed)) {
			out = append(out, s.name())
		}
	}
	return out
}

// levenshtein is the edit distance between s and t, in bytes.
func levenshtein(s, t string) int {
	d := make([]int, len(t)+1) // the previous row
	for j := range d {
		d[j] = j
	}
	for i := 1; i <= len(s); i++ {
		diag := d[0] // d[i-1][j-1]
		d[0] = i
		for j := 1; j <= len(t); j++ {
			up := d[j] // d[i-1][j]
			if s[i-1] == t[j-1] {
				d[j] = diag
			} else {
				d[j] = min(up, d[j-1], diag) + 1
			}
			diag = up
		}
	}
	return d[len(t)]
}
