package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/lint/lintcmd"
	"github.com/secretbroker/secretbroker/pipeline"
	"github.com/secretbroker/secretbroker/spec"
)

// newLintCommand wires `inject lint`. Lint's packages compile their rules
// on first use, so carrying them costs inject's start-up nothing measurable.
func newLintCommand() *cobra.Command {
	lintcmd.Version = cli.ResolvedVersion()
	lintcmd.KnownSecretsLoader = knownSecrets
	c := lintcmd.Command()
	run := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		err := run(cmd, args)
		if err == nil {
			return nil
		}
		var ee *lintcmd.ExitError
		if errors.As(err, &ee) && ee.Err == nil {
			return exitQuietly(ee.Code) // lint has already reported
		}
		return cli.Exit(lintcmd.ExitCode(err), err)
	}
	return c
}

// knownSecrets resolves an inject spec's references with the CI job's own
// credentials, for `inject lint --known-secrets SPEC`. The values stay in
// memory; lint names findings by secret name and never prints them.
func knownSecrets(ctx context.Context, specPath string) ([]lintcmd.KnownSecret, error) {
	f := pflag.NewFlagSet("known-secrets", pflag.ContinueOnError)
	spec.AddFlags(f)
	if err := f.Parse([]string{"--config", specPath}); err != nil {
		return nil, err
	}
	s, err := spec.Load(f)
	if err != nil {
		return nil, err
	}
	r, err := pipeline.New(s, nil)
	if err != nil {
		return nil, err
	}
	if err := r.CheckPolicy(); err != nil {
		return nil, err
	}
	// Release what the providers logged in for (a Vault token, leases)
	// whether or not the fetch succeeds: lint delivers nothing that needs it.
	defer r.Release()
	// Inject's all-or-nothing resolution, with no directory: nothing written.
	rep, err := r.Deliver(ctx, pipeline.Delivery{Mode: pipeline.Inject})
	if err != nil {
		return nil, fmt.Errorf("--known-secrets %s: %w", specPath, err)
	}
	var out []lintcmd.KnownSecret
	for _, o := range rep.Outcomes {
		if !o.Skipped {
			out = append(out, lintcmd.KnownSecret{Name: o.Secret.Name, Value: o.Got.Value.Reveal()})
		}
	}
	return out, nil
}
