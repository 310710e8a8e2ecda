package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/providers"
)

func newPolicyCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Print the minimal provider-side grant for the spec, or audit the live credentials",
		Args:  cobra.ArbitraryArgs,
		RunE:  cli.UnknownSubcommand, // `inject policy gcp` is 64, not help and 0
	}
	// Each built-in provider with a grant to print brings its own
	// `inject policy NAME` (its descriptor's PolicyHooks).
	for _, sc := range providers.Registered() {
		if reg, _ := providers.Lookup(sc); reg.Policy != nil && reg.Policy.Generate != nil {
			c.AddCommand(newPolicyGrantCommand(reg))
		}
	}
	audit := &cobra.Command{
		Use:   "audit",
		Short: "Exit 1 when a live credential is broader than the spec needs (0 when not, 69 when there is no credential)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSpec(cmd, false)
			if err != nil {
				return err
			}
			schemes := s.Schemes()
			sort.Strings(schemes)
			broader, ran := false, 0
			for _, sc := range schemes {
				reg, _ := providers.Lookup(sc)
				if reg.Policy == nil || reg.Policy.Audit == nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: no audit for this provider\n", sc)
					continue
				}
				ran++
				ctx, cancel := context.WithTimeout(cmd.Context(), s.Timeout) // --timeout bounds each audit
				b, err := reg.Policy.Audit(ctx, s.ProviderEnv(reg.Block), s.Refs(), cmd.OutOrStdout(), cmd.ErrOrStderr())
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

// newPolicyGrantCommand is `inject policy NAME` for one provider: the
// least provider-side grant for the spec's references of its scheme, on
// stdout, with notes on stderr.
func newPolicyGrantCommand(reg providers.Registration) *cobra.Command {
	c := &cobra.Command{
		Use:   reg.Policy.Use,
		Short: reg.Policy.Short,
		Args:  cobra.NoArgs,
	}
	run := reg.Policy.Generate(c.Flags())
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		s, err := loadSpec(cmd, false)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(s.Refs(), func(r providers.Ref) bool { return r.Scheme == reg.Scheme }) {
			// An empty grant would look like a grant: refuse (64) here, once,
			// for every provider.
			return cli.Exit(cli.ExitUsage, fmt.Errorf("the spec has no %s:// reference, so `inject policy %s` has nothing to grant", reg.Scheme, cmd.Name()))
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), s.Timeout) // a provider may ask its server (Vault's mounts)
		defer cancel()
		err = run(ctx, s.ProviderEnv(reg.Block), s.Refs(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		var usage *providers.UsageError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &usage), providers.KindOf(err) == providers.KindConfig:
			return cli.Exit(cli.ExitUsage, err)
		default:
			return cli.Exit(cli.ExitProvider, err)
		}
	}
	addPolicyFlags(c.Flags())
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
