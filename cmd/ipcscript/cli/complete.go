package cli

import (
	"embed"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// Shell completion, as cobra (which this package used until issue 12) did
// it: `ipcscript completion SHELL` writes a script, and the script asks the
// binary itself, `ipcscript __complete WORDS... PARTIAL`, which prints one
// completion a line ("choice<TAB>description"), then ":<directive>".
//
// The scripts in completion/ are cobra v1.10.2's (Apache License 2.0,
// github.com/spf13/cobra) as it generated them for the name ipcscript;
// --no-descriptions asks __completeNoDesc instead of __complete.
//
//go:embed completion/bash completion/zsh completion/fish completion/powershell
var completionScripts embed.FS

// compDirective tells the script what to do besides offering the
// completions (cobra's ShellCompDirective, same values).
type compDirective int

const (
	compError compDirective = 1 << iota
	compNoSpace
	compNoFileComp
	compFilterFileExt
	compFilterDirs
	compKeepOrder
	compMaxValue
	compDefault compDirective = 0
)

func (d compDirective) String() string {
	var names []string
	for _, n := range []struct {
		d    compDirective
		name string
	}{{compError, "Error"}, {compNoSpace, "NoSpace"}, {compNoFileComp, "NoFileComp"},
		{compFilterFileExt, "FilterFileExt"}, {compFilterDirs, "FilterDirs"}, {compKeepOrder, "KeepOrder"}} {
		if d&n.d != 0 {
			names = append(names, "ShellCompDirective"+n.name)
		}
	}
	if len(names) == 0 {
		names = append(names, "ShellCompDirectiveDefault")
	}
	if d >= compMaxValue {
		return fmt.Sprintf("ERROR: unexpected ShellCompDirective value: %d", d)
	}
	return strings.Join(names, ", ")
}

func noFileCompletions(*command, []string, string) ([]string, compDirective) {
	return nil, compNoFileComp
}

// newCompletionCmd is `ipcscript completion SHELL`.
func newCompletionCmd() *command {
	comp := &command{
		use:   "completion",
		short: "Generate the autocompletion script for the specified shell",
		long: `Generate the autocompletion script for ipcscript for the specified shell.
See each sub-command's help for details on how to use the generated script.
`,
		args:     noArgs,
		complete: noFileCompletions,
	}
	for _, sh := range []struct{ name, long string }{
		{"bash", `Generate the autocompletion script for the bash shell.

This script depends on the 'bash-completion' package.
If it is not installed already, you can install it via your OS's package manager.

To load completions in your current shell session:

	source <(ipcscript completion bash)

To load completions for every new session, execute once:

#### Linux:

	ipcscript completion bash > /etc/bash_completion.d/ipcscript

#### macOS:

	ipcscript completion bash > $(brew --prefix)/etc/bash_completion.d/ipcscript

You will need to start a new shell for this setup to take effect.
`},
		{"zsh", `Generate the autocompletion script for the zsh shell.

If shell completion is not already enabled in your environment you will need
to enable it.  You can execute the following once:

	echo "autoload -U compinit; compinit" >> ~/.zshrc

To load completions in your current shell session:

	source <(ipcscript completion zsh)

To load completions for every new session, execute once:

#### Linux:

	ipcscript completion zsh > "${fpath[1]}/_ipcscript"

#### macOS:

	ipcscript completion zsh > $(brew --prefix)/share/zsh/site-functions/_ipcscript

You will need to start a new shell for this setup to take effect.
`},
		{"fish", `Generate the autocompletion script for the fish shell.

To load completions in your current shell session:

	ipcscript completion fish | source

To load completions for every new session, execute once:

	ipcscript completion fish > ~/.config/fish/completions/ipcscript.fish

You will need to start a new shell for this setup to take effect.
`},
		{"powershell", `Generate the autocompletion script for powershell.

To load completions in your current shell session:

	ipcscript completion powershell | Out-String | Invoke-Expression

To load completions for every new session, add the output of the above command
to your powershell profile.
`},
	} {
		var noDesc bool
		shell := sh.name
		c := &command{
			use:      shell,
			short:    "Generate the autocompletion script for " + shell,
			long:     sh.long,
			args:     noArgs,
			complete: noFileCompletions,
			run: func(c *command, _ []string) error {
				script, err := completionScripts.ReadFile("completion/" + shell)
				if err != nil {
					return err
				}
				if noDesc {
					script = []byte(strings.Replace(string(script), " __complete ", " __completeNoDesc ", 1))
				}
				_, err = c.root().out.Write(script)
				return err
			},
		}
		c.flagSet().BoolVar(&noDesc, "no-descriptions", false, "disable completion descriptions")
		comp.addCommand(c)
	}
	return comp
}

// addCompleteCmd adds __complete to root when args call it (only then: a
// hidden command would otherwise be one more name a script could not have).
func addCompleteCmd(root *command, args []string) {
	cc := &command{
		use:     "__complete [command-line]",
		aliases: []string{"__completeNoDesc"},
		hidden:  true,
		noFlags: true,
		args:    minimumNArgs(1),
		short:   "Request shell completion choices for the specified command-line",
		long: "__complete is a special command that is used by the shell completion logic\n" +
			"to request completion choices for the specified command-line.",
		run: runComplete,
	}
	root.addCommand(cc)
	if found, _ := root.find(args); found != cc {
		root.removeCommand(cc)
	}
}

func runComplete(c *command, args []string) error {
	root := c.root()
	comps, directive, err := completions(root, args)
	if err != nil {
		compDebug("[Error] " + err.Error() + "\n")
	}
	noDesc := c.calledAs == "__completeNoDesc"
	if !noDesc {
		if v, err := strconv.ParseBool(envConfig("COMPLETION_DESCRIPTIONS")); err == nil {
			noDesc = !v
		}
	}
	for _, comp := range comps {
		if noDesc {
			comp, _, _ = strings.Cut(comp, "\t")
		}
		comp, _, _ = strings.Cut(comp, "\n") // a description's first line only
		fmt.Fprintln(root.out, strings.TrimSpace(comp))
	}
	fmt.Fprintf(root.out, ":%d\n", directive)
	fmt.Fprintf(root.errOut, "Completion ended with directive: %s\n", directive)
	return nil
}

// envConfig is IPCSCRIPT_<suffix>, or else COBRA_<suffix> (which
// completion read when it was cobra's).
func envConfig(suffix string) string {
	if v := os.Getenv("IPCSCRIPT_" + suffix); v != "" {
		return v
	}
	return os.Getenv("COBRA_" + suffix)
}

// compDebug writes a message for whoever debugs a completion script: to
// stderr (which the scripts ignore) and to $BASH_COMP_DEBUG_FILE.
func compDebug(msg string) {
	msg = "[Debug] " + msg
	if path := os.Getenv("BASH_COMP_DEBUG_FILE"); path != "" {
		if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.WriteString(msg)
			f.Close()
		}
	}
	fmt.Fprint(os.Stderr, msg)
}

type flagCompError struct{ subCommand, flagName string }

func (e *flagCompError) Error() string {
	return "Subcommand '" + e.subCommand + "' does not support flag '" + e.flagName + "'"
}

// completions are the completions of the last of args, the words before
// it typed already.
func completions(root *command, args []string) ([]string, compDirective, error) {
	toComplete := args[len(args)-1]
	final, finalArgs := root.find(args[:len(args)-1])
	if !final.noFlags {
		final.initHelpFlag()
		final.initVersionFlag()
	}
	fs := final.flagSet()
	// Completing a flag's value: the flag, and the words without it.
	flag, finalArgs, toComplete, flagErr := flagToComplete(final, finalArgs, toComplete)

	// After a script (no interspersed flags) or "--", a word is an
	// argument even when it starts with '-': "--" appended counts as one
	// more argument then.
	flagCompletion := true
	if !final.noFlags {
		fs.Parse(slices.Concat(finalArgs, []string{"--"}))
		withDash := fs.NArg()
		if err := fs.Parse(finalArgs); err != nil {
			return nil, compDefault, fmt.Errorf("Error while parsing flags from args %v: %s", finalArgs, err.Error())
		}
		if withDash > fs.NArg() {
			flagCompletion = false
		}
	}
	if flagErr != nil {
		if _, ok := flagErr.(*flagCompError); !ok || flagCompletion {
			return nil, compDefault, flagErr
		}
	}
	for _, name := range []string{"version", "help"} {
		if f := fs.Lookup(name); f != nil && len(f.Annotations[flagSetByUs]) > 0 && f.Changed {
			return nil, compNoFileComp, nil // nothing follows --help or --version
		}
	}
	if !final.noFlags {
		finalArgs = fs.Args()
	}

	var comps []string
	if flag == nil && strings.HasPrefix(toComplete, "-") && !strings.Contains(toComplete, "=") && flagCompletion {
		// A flag's name: the flags not given yet.
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Changed || f.Hidden || f.Deprecated != "" {
				return
			}
			if long := "--" + f.Name; strings.HasPrefix(long, toComplete) {
				comps = append(comps, long+"\t"+f.Usage)
			}
			if short := "-" + f.Shorthand; f.Shorthand != "" && strings.HasPrefix(short, toComplete) {
				comps = append(comps, short+"\t"+f.Usage)
			}
		})
		if len(comps) == 1 && strings.HasSuffix(comps[0], "=") {
			return comps, compNoSpace, nil
		}
		return comps, compNoFileComp, nil
	}
	directive := compDefault
	if flag == nil {
		given := false
		fs.VisitAll(func(f *pflag.Flag) { given = given || f.Changed })
		if len(finalArgs) == 0 && !given {
			// A subcommand's name.
			for _, s := range final.commands() {
				if s.available() || s == final.helpCommand {
					if strings.HasPrefix(s.name(), toComplete) {
						comps = append(comps, s.name()+"\t"+s.short)
					}
					directive = compNoFileComp
				}
			}
		}
	}
	if (flag == nil || !flagCompletion) && final.complete != nil {
		// An argument (no flag of this command line completes its value).
		more, d := final.complete(final, finalArgs, toComplete)
		comps, directive = append(comps, more...), d
	}
	return comps, directive, nil
}

// flagToComplete finds the flag whose value toComplete is ("--flag=x" or
// "--flag x"): the flag, the words without the flag's name, and the value
// typed so far.
func flagToComplete(c *command, args []string, toComplete string) (*pflag.Flag, []string, string, error) {
	if c.noFlags {
		return nil, args, toComplete, nil
	}
	var name string
	trimmed, typed, withEqual := args, toComplete, false
	if strings.HasPrefix(toComplete, "-") {
		i := strings.Index(toComplete, "=")
		if i < 0 {
			return nil, args, toComplete, nil // a flag's name
		}
		if strings.HasPrefix(toComplete[:i], "--") {
			name = toComplete[2:i]
		} else {
			name = toComplete[i-1 : i] // -abc=x: c
		}
		toComplete, withEqual = toComplete[i+1:], true
	}
	if name == "" && len(args) > 0 {
		prev := args[len(args)-1]
		if isFlagArg(prev) && !strings.Contains(prev, "=") {
			if strings.HasPrefix(prev, "--") {
				name = prev[2:]
			} else {
				name = prev[len(prev)-1:]
			}
			trimmed = args[:len(args)-1]
		}
	}
	if name == "" {
		return nil, trimmed, toComplete, nil
	}
	fs := c.flagSet()
	if len(name) == 1 {
		short := fs.ShorthandLookup(name)
		if short == nil {
			return nil, args, typed, &flagCompError{subCommand: c.name(), flagName: name}
		}
		name = short.Name
	}
	f := fs.Lookup(name)
	if f == nil {
		return nil, args, typed, &flagCompError{subCommand: c.name(), flagName: name}
	}
	if !withEqual && f.NoOptDefVal != "" {
		return nil, args, toComplete, nil // a boolean flag: no value follows
	}
	return f, trimmed, toComplete, nil
}

func isFlagArg(arg string) bool {
	return len(arg) >= 3 && arg[:2] == "--" || len(arg) >= 2 && arg[0] == '-' && arg[1] != '-'
}
