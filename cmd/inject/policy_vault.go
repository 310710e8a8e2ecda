//go:build !novault

package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/vault"
	"github.com/secretbroker/secretbroker/spec"
)

func init() {
	policySubcommands = append(policySubcommands, newPolicyVaultCommand)
	auditors[vault.Scheme] = auditVault
}

// auditVault checks the live Vault token (see vault.AuditFor).
func auditVault(ctx context.Context, s *spec.Spec, stdout, _ io.Writer) (bool, error) {
	return vault.AuditFor(ctx, s.ProviderEnv(vault.Block), s.Refs(), stdout)
}

// newPolicyVaultCommand is `inject policy vault`: the minimal ACL policy
// for the spec's vault references (see vault.PolicyFor), HCL on stdout,
// notes on stderr.
func newPolicyVaultCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "vault [--config FILE]",
		Short: "Print the minimal Vault ACL policy (HCL) that lets inject read the spec's vault secrets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSpec(cmd)
			if err != nil {
				return err
			}
			if !slices.Contains(s.Schemes(), vault.Scheme) {
				// As `policy aws` does: an empty policy would look like a grant.
				return cli.Exit(cli.ExitUsage, fmt.Errorf("the spec has no vault:// reference, so it needs no Vault policy"))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), s.Timeout) // mount lookups
			defer cancel()
			hcl, notes, err := vault.PolicyFor(ctx, s.ProviderEnv(vault.Block), s.Refs())
			if err != nil {
				code := cli.ExitProvider
				if providers.KindOf(err) == providers.KindConfig {
					code = cli.ExitUsage
				}
				return cli.Exit(code, err)
			}
			for _, n := range notes {
				fmt.Fprintln(cmd.ErrOrStderr(), "note: "+n)
			}
			_, err = io.WriteString(cmd.OutOrStdout(), hcl)
			return err
		},
	}
}
