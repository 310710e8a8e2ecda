package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/secretbroker/secretbroker/internal/suggest"
)

// usageTemplate is cobra's, with the subcommands called subcommands, the
// help command named as people type it (`inject help lint`), and flags
// rendered by flagUsages.
const usageTemplate = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} SUBCOMMAND [flags]{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Subcommands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{flagUsages .LocalFlags}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{flagUsages .InheritedFlags}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} help SUBCOMMAND" for more about a subcommand.{{end}}
`

func init() { cobra.AddTemplateFunc("flagUsages", flagUsages) }

// flagUsages is pflag's flag list without the `[=true|false]` pflag 1.1
// adds to every boolean: `--dry-run` is how people write it, and the
// suffix made every boolean line look like it took a value.
func flagUsages(fs *pflag.FlagSet) string {
	plain := pflag.NewFlagSet("", pflag.ContinueOnError)
	fs.VisitAll(func(f *pflag.Flag) {
		c := *f
		if f.Value.Type() == "bool" {
			c.Value = plainBool{f.Value}
		}
		plain.AddFlag(&c)
	})
	plain.SortFlags = fs.SortFlags
	return strings.TrimRight(plain.FlagUsages(), " \n")
}

// plainBool is a bool flag's value without IsBoolFlag, which is only what
// makes pflag print `[=true|false]`; NoOptDefVal still marks it a switch.
type plainBool struct{ pflag.Value }

// Suggest returns the candidates close to typed (see package suggest).
func Suggest(typed string, candidates []string) []string { return suggest.Names(typed, candidates) }

// didYouMean is suggest.DidYouMean.
var didYouMean = suggest.DidYouMean

// suggestFlag adds "did you mean --X?" to pflag's "unknown flag: --Y",
// from the flags of the command that refused it.
func suggestFlag(cmd *cobra.Command, err error) error {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok || strings.HasSuffix(name, "--help lists the flags)") {
		return err // not an unknown flag, or already explained by a parent's handler
	}
	var names []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, f.Name)
		}
	})
	hint := didYouMean(Suggest(name, names), "--%s")
	return fmt.Errorf("%w%s (%s --help lists the flags)", err, hint, cmd.CommandPath())
}

// prepare gives every command of the tree the usage template, flag
// suggestions, and usage errors that name the way out.
func prepare(root *cobra.Command) {
	root.SetUsageTemplate(usageTemplate)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		prev := c.FlagErrorFunc()
		c.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
			return prev(cmd, suggestFlag(cmd, err))
		})
		c.SilenceErrors, c.SilenceUsage = true, true
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// UnknownSubcommand is the RunE of a command that only groups subcommands
// (`inject policy`): with no word, or a word that is none of them, it is a
// usage error (64) that lists them, instead of help and exit 0.
func UnknownSubcommand(cmd *cobra.Command, args []string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	choose := strings.Join(names, ", ")
	if len(args) == 0 {
		return usageError{fmt.Errorf("%s needs a subcommand: %s (see %s --help)", cmd.Name(), choose, cmd.CommandPath())}
	}
	hint := didYouMean(Suggest(args[0], names), "`"+cmd.CommandPath()+" %s`")
	return usageError{fmt.Errorf("%s: unknown subcommand %q%s (choose from: %s)", cmd.Name(), args[0], hint, choose)}
}

// usageError is exit 64 (see Main's mapping of errors that carry no code).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// helpRequested is true when a word before `--` asks for help or the
// version: then the whole tree is built, so help lists every subcommand.
// (`inject app --help` builds it too, and still passes --help to the app.)
func helpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help", "-v", "--version":
			return true
		}
	}
	return false
}

// WithExample sets a subcommand's help example where the subcommand is
// registered, so every line of the root's help has one to point at.
func WithExample(mk func() *cobra.Command, example string) func() *cobra.Command {
	return func() *cobra.Command {
		c := mk()
		if c.Example == "" {
			c.Example = example
		}
		return c
	}
}
