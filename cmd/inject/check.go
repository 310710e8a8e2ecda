package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/pipeline"
	"github.com/secretbroker/secretbroker/providers"
)

func newCheckCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "check",
		Short: "Resolve every reference and report on each; write nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSpec(cmd)
			if err != nil {
				return err
			}
			r, err := pipeline.New(s, s.Logger)
			if err != nil {
				return pipeline.Exit(pipeline.ExitUsage, err)
			}
			if err := r.CheckPolicy(); err != nil {
				return err
			}
			res := r.Resolve(context.Background())
			// Release what providers hold alive (a Vault login token,
			// dynamic-secret leases): check delivers nothing that needs them.
			defer r.Release()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			failed := 0
			for _, sec := range s.Secrets {
				if err := res.Err(sec.Ref); err != nil {
					if sec.Optional && providers.KindOf(err) == providers.KindNotFound {
						fmt.Fprintf(tw, "skip\t%s\t%s\toptional, not found\n", sec.Name, sec.Ref.Raw)
						continue
					}
					failed++
					fmt.Fprintf(tw, "FAIL\t%s\t%s\t%v\n", sec.Name, sec.Ref.Raw, err)
					continue
				}
				got, _ := res.Get(sec.Ref)
				detail := fmt.Sprintf("%d bytes", got.Value.Len())
				if got.Version != "" {
					detail += ", version " + got.Version
				}
				if got.LeaseTTL > 0 {
					detail += fmt.Sprintf(", lease %s", got.LeaseTTL)
				}
				if v := r.Policies.CheckSize(sec.Name, got.Value.Len()); v != nil {
					failed++
					fmt.Fprintf(tw, "FAIL\t%s\t%s\t%s\n", sec.Name, sec.Ref.Raw, v)
					continue
				}
				fmt.Fprintf(tw, "ok\t%s\t%s\t%s\n", sec.Name, sec.Ref.Raw, detail)
				got.Value.Wipe()
			}
			tw.Flush()
			if failed > 0 {
				return pipeline.Exit(pipeline.ExitProvider, fmt.Errorf("%d of %d secret(s) failed", failed, len(s.Secrets)))
			}
			return nil
		},
	}
	addCommonFlags(c.Flags())
	return c
}
