package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/pipeline"
	"github.com/secretbroker/secretbroker/policy"
	"github.com/secretbroker/secretbroker/spec"
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
// and prints a line per secret, then one per template source: whether the
// read gate would let inject read it. A source the gate refuses (64), or a
// plan the policy denies (77), stops check before anything is fetched, as
// it would stop inject; each source still gets its line.
func runCheck(cmd *cobra.Command, _ []string) error {
	s, err := loadSpec(cmd, true)
	if err != nil {
		return err
	}
	r, err := pipeline.New(s, s.Logger)
	if err != nil {
		return cli.Exit(cli.ExitUsage, err)
	}
	perr := r.CheckPolicy()
	if perr != nil && cli.CodeOf(perr) != cli.ExitPolicy {
		return perr // no policy could be read: no verdict is known
	}
	verdicts, serr := r.Sources()
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	if serr != nil || perr != nil {
		printSources(tw, s, verdicts)
		tw.Flush()
		if cli.CodeOf(serr) == cli.ExitUsage {
			return serr
		}
		return perr
	}
	// Release what providers hold alive (a Vault login token,
	// dynamic-secret leases): check delivers nothing that needs them.
	defer r.Release()
	rep, err := r.Deliver(context.Background(), pipeline.Delivery{Mode: pipeline.Check})
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
	printSources(tw, s, verdicts)
	tw.Flush()
	return err
}

// printSources prints check's line for each template source: ok, or FAIL
// and why the read gate (or the guardrail) refuses it. It names the file,
// never its text.
func printSources(w io.Writer, s *spec.Spec, verdicts []error) {
	for i, t := range s.Templates {
		status, why := sourceVerdict(t, verdicts[i])
		fmt.Fprintf(w, "%s\t%s\t(template %s)\t%s\n", status, t.Dest, t.Source, why)
	}
}

// sourceVerdict is a template source's verdict (pipeline.Run.Sources) as
// a status (ok, FAIL) and one line saying why.
func sourceVerdict(t spec.Template, v error) (status, why string) {
	var d policy.Denied
	switch {
	case v == nil:
		return "ok", fmt.Sprintf("passes the read gate (%d bytes)", len(t.Text))
	case errors.As(v, &d) && len(d) > 0:
		return "FAIL", "DENIED: " + d[0].String()
	}
	// The column names the source already: no "cannot read PATH: " again.
	return "FAIL", "REFUSED: " + strings.TrimPrefix(v.Error(), "cannot read "+t.Source+": ")
}
