package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/pipeline"
	"github.com/secretbroker/secretbroker/policy"
)

func newCheckCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "check",
		Short: "Resolve every reference and report on each; write nothing",
		Args:  cobra.NoArgs,
		RunE:  runCheck,
	}
	addCommonFlags(c.Flags())
	return c
}

// runCheck resolves every reference through the pipeline (Check mode)
// and prints a line per secret.
func runCheck(cmd *cobra.Command, _ []string) error {
	s, err := loadSpec(cmd)
	if err != nil {
		return err
	}
	r, err := pipeline.New(s, s.Logger)
	if err != nil {
		return cli.Exit(cli.ExitUsage, err)
	}
	if err := r.CheckPolicy(); err != nil {
		return err
	}
	// Release what providers hold alive (a Vault login token,
	// dynamic-secret leases): check delivers nothing that needs them.
	defer r.Release()
	rep, err := r.Deliver(context.Background(), pipeline.Delivery{Mode: pipeline.Check})
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	for _, o := range rep.Outcomes {
		sec := o.Secret
		switch {
		case o.Skipped:
			fmt.Fprintf(tw, "skip\t%s\t%s\toptional, not found\n", sec.Name, sec.Ref.Raw)
		case o.Err != nil:
			// The REFERENCE column already names it: no "REF: " again.
			msg := strings.TrimPrefix(o.Err.Error(), sec.Ref.Raw+": ")
			if d, ok := o.Err.(policy.Denied); ok && len(d) == 1 {
				msg = d[0].String() // one line in the table
			}
			fmt.Fprintf(tw, "FAIL\t%s\t%s\t%s\n", sec.Name, sec.Ref.Raw, msg)
		default:
			detail := fmt.Sprintf("%d bytes", o.Got.Value.Len())
			if o.Got.Version != "" {
				detail += ", version " + o.Got.Version
			}
			if o.Got.LeaseTTL > 0 {
				detail += fmt.Sprintf(", lease %s", o.Got.LeaseTTL)
			}
			fmt.Fprintf(tw, "ok\t%s\t%s\t%s\n", sec.Name, sec.Ref.Raw, detail)
		}
		o.Got.Value.Wipe()
	}
	tw.Flush()
	return err
}
