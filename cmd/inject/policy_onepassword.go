//go:build !noonepassword

package main

import (
	"context"
	"errors"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/providers/onepassword"
	"github.com/secretbroker/secretbroker/spec"
)

func init() {
	policySubcommands = append(policySubcommands, func() *cobra.Command {
		return &cobra.Command{
			Use:   "onepassword",
			Short: "Print the 1Password vaults the spec reads and the access a service account or Connect token needs",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				s, err := loadSpec(cmd)
				if err != nil {
					return err
				}
				if !slices.Contains(s.Schemes(), "op") {
					// As `policy vault` and `policy aws` do (64).
					return cli.Exit(cli.ExitUsage, errors.New("the spec has no op:// reference, so it needs no 1Password access"))
				}
				return onepassword.WritePolicy(cmd.OutOrStdout(), s.Refs())
			},
		}
	})
	auditors["op"] = func(ctx context.Context, s *spec.Spec, stdout, _ io.Writer) (bool, error) {
		rep, err := onepassword.Audit(ctx, s.ProviderEnv("onepassword"), s.Refs())
		if err != nil {
			return false, err
		}
		return rep.Broader(), onepassword.WriteAudit(stdout, rep)
	}
}
