//go:build !noawssm

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/providers/awssm"
	"github.com/secretbroker/secretbroker/spec"
)

func init() {
	policySubcommands = append(policySubcommands, newPolicyAWSCommand)
	auditors[awssm.Scheme] = auditAWS
}

// auditAWS probes the live AWS credential (see awssm.Audit).
func auditAWS(ctx context.Context, s *spec.Spec, stdout, stderr io.Writer) (bool, error) {
	sm, id, region, err := awssm.NewAudit(ctx, s.ProviderEnv(awssm.Block))
	if err != nil {
		return false, err
	}
	return awssm.Audit(ctx, sm, id, s.Refs(), region, stdout, stderr)
}

// newPolicyAWSCommand is `inject policy aws`: the least IAM policy for the
// spec's aws-sm references (see awssm.Policy), JSON on stdout, notes on stderr.
func newPolicyAWSCommand() *cobra.Command {
	var account string
	var kmsKeys []string
	c := &cobra.Command{
		Use:   "aws [--config FILE] [--account ID] [--kms-key ARN]...",
		Short: "Print the least IAM policy that lets inject read the spec's aws-sm secrets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSpec(cmd)
			if err != nil {
				return err
			}
			region, _ := s.Providers[awssm.Block]["region"].(string)
			if region == "" {
				region = s.Getenv("AWS_REGION")
			}
			if region == "" {
				region = s.Getenv("AWS_DEFAULT_REGION")
			}
			pol, notes, err := awssm.Policy(s.Refs(), awssm.PolicyOptions{Region: region, Account: account, KMSKeys: kmsKeys})
			if err != nil {
				return cli.Exit(cli.ExitUsage, err)
			}
			for _, n := range notes {
				fmt.Fprintln(cmd.ErrOrStderr(), "note: "+n)
			}
			_, err = cmd.OutOrStdout().Write(pol.JSON())
			return err
		},
	}
	c.Flags().StringVar(&account, "account", "", "AWS account id the named secrets live in (default: any account)")
	c.Flags().StringArrayVar(&kmsKeys, "kms-key", nil, "ARN of a customer-managed KMS key the secrets are encrypted with (repeatable)")
	return c
}
