package cli

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/process"
)

// RunsPrograms is the annotation a root command carries when its
// arguments are a program to run (inject's ENTRYPOINT mode): a mistyped
// subcommand is then caught only when no program of that name exists.
const RunsPrograms = "secretbroker/runs-programs"

// build returns the command tree args need: the one subcommand args[0]
// names under a bare parent; the whole tree for help, --version and
// completion; otherwise the root alone. A first word that is no subcommand,
// no flag and no program, but close to a subcommand, is a usage error that
// says which one was meant, before anything runs.
func build(name string, args []string, newRoot func() *cobra.Command, subcommands map[string]func() *cobra.Command) (*cobra.Command, error) {
	first := ""
	if len(args) > 0 {
		first = args[0]
	}
	if mk, ok := subcommands[first]; ok {
		cmd := &cobra.Command{Use: name}
		cmd.AddCommand(mk())
		prepare(cmd)
		return cmd, nil
	}
	root := newRoot()
	switch {
	case first == "help" || first == "completion" || first == cobra.ShellCompRequestCmd || first == cobra.ShellCompNoDescRequestCmd || helpRequested(args):
		root.Version = ResolvedVersion()
		root.SetVersionTemplate(versionLine(name) + "\n")
		names := make([]string, 0, len(subcommands))
		for n := range subcommands {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			root.AddCommand(subcommands[n]())
		}
		// Made now rather than by Execute, so prepare reaches them too.
		root.InitDefaultHelpCmd()
		root.InitDefaultCompletionCmd()
		for _, c := range root.Commands() {
			switch c.Name() {
			case "completion":
				c.Args, c.RunE = cobra.ArbitraryArgs, UnknownSubcommand // `completion tcsh` is 64
			case "help":
				c.RunE, c.Run = helpOrUnknown(c.Run), nil // `help nosuch` is 64, not the root's usage and 0
			}
		}
	case first != "" && !strings.HasPrefix(first, "-") && !strings.Contains(first, "/"):
		if err := mistyped(name, first, root.Annotations[RunsPrograms] != "", subcommands); err != nil {
			return nil, err
		}
	}
	prepare(root)
	return root, nil
}

// mistyped returns a usage error when word is close to a subcommand and,
// for a root that runs programs, no program of that name is on PATH (so
// `inject cat` still runs cat).
func mistyped(name, word string, runsPrograms bool, subcommands map[string]func() *cobra.Command) error {
	if runsPrograms {
		if _, err := process.LookPath(word, os.Environ()); err == nil {
			return nil
		}
	}
	names := []string{"help", "completion"}
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	s := Suggest(word, names)
	if len(s) == 0 {
		return nil
	}
	hint := didYouMean(s, "`"+name+" %s`")
	if runsPrograms {
		return usageError{fmt.Errorf("%q is no subcommand and no program on PATH%s (to run a program of that name: %s -- %s)", word, hint, name, word)}
	}
	return usageError{fmt.Errorf("unknown subcommand %q%s", word, hint)}
}

// helpOrUnknown wraps cobra's help command: a topic that names no command
// is a usage error with suggestions, as a mistyped subcommand is.
func helpOrUnknown(help func(*cobra.Command, []string)) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		target, rest, err := c.Root().Find(args)
		if err == nil && len(rest) == 0 {
			help(c, args)
			return nil
		}
		if target == nil {
			target = c.Root()
		}
		var names []string
		for _, sub := range target.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				names = append(names, sub.Name())
			}
		}
		word := args[len(args)-len(rest)]
		if len(rest) == 0 {
			word = args[len(args)-1]
		}
		hint := didYouMean(Suggest(word, names), "`"+c.Root().Name()+" help "+strings.TrimSpace(strings.TrimPrefix(target.CommandPath(), c.Root().Name())+" %s")+"`")
		return usageError{fmt.Errorf("help: no subcommand %q under %s%s (%s --help lists them)", word, target.CommandPath(), hint, target.CommandPath())}
	}
}
