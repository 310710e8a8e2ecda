package main

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/spec"
)

// policySubcommands are the provider-specific `inject policy NAME`
// commands; each provider's policy_<name>.go appends its own in init.
var policySubcommands []func() *cobra.Command

// Auditor compares a provider's live credential with what the spec needs,
// within ctx (which carries --timeout).
// broader is true when the credential can do more than the spec needs.
type Auditor func(ctx context.Context, s *spec.Spec, stdout, stderr io.Writer) (broader bool, err error)

// auditors are keyed by scheme; `inject policy audit` runs those whose
// scheme the spec uses.
var auditors = map[string]Auditor{}

func newPolicyCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Print the minimal provider-side grant for the spec, or audit the live credentials",
		Args:  cobra.ArbitraryArgs,
		RunE:  cli.UnknownSubcommand, // `inject policy gcp` is 64, not help and 0
	}
	for _, mk := range policySubcommands {
		sub := mk()
		addPolicyFlags(sub.Flags())
		c.AddCommand(sub)
	}
	audit := &cobra.Command{
		Use:   "audit",
		Short: "Exit 1 when a live credential is broader than the spec needs (0 when not, 69 when there is no credential)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSpec(cmd)
			if err != nil {
				return err
			}
			schemes := s.Schemes()
			sort.Strings(schemes)
			broader, ran := false, 0
			for _, sc := range schemes {
				a, ok := auditors[sc]
				if !ok {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: no audit for this provider\n", sc)
					continue
				}
				ran++
				ctx, cancel := context.WithTimeout(cmd.Context(), s.Timeout) // --timeout bounds each audit
				b, err := a(ctx, s, cmd.OutOrStdout(), cmd.ErrOrStderr())
				cancel()
				if err != nil {
					return cli.Exit(cli.ExitProvider, fmt.Errorf("%s audit: %w", sc, err))
				}
				broader = broader || b
			}
			if ran == 0 {
				return cli.Exit(cli.ExitProvider, fmt.Errorf("nothing to audit: the spec uses no provider with a live credential to check"))
			}
			if broader {
				return exitQuietly(1)
			}
			return nil
		},
	}
	addPolicyFlags(audit.Flags())
	c.AddCommand(audit)
	return c
}

// policyFlags are the declaration flags the policy commands read: the
// spec and how to reach the providers. Where the files go, who owns them
// and how the directory is checked mean nothing to a grant, so --dir,
// --user, --mount and --allow-disk are not offered.
var policyFlags = []string{"config", "timeout", "strict", "log-level", "log-format"}

func addPolicyFlags(f *pflag.FlagSet) {
	all := pflag.NewFlagSet("spec", pflag.ContinueOnError)
	addCommonFlags(all)
	for _, name := range policyFlags {
		f.AddFlag(all.Lookup(name))
	}
}
