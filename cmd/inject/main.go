// Command inject is the container ENTRYPOINT wrapper: it resolves the
// secrets a workload declares, writes them to tmpfs and starts the app. The
// command only wires packages; the work is in spec, policy, providers,
// tmpfs, process and pipeline.
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/internal/cli"
	_ "github.com/secretbroker/secretbroker/providers/builtin" // the providers this binary carries
)

func main() { os.Exit(Main(os.Args[1:])) }

// Main runs inject with args and returns its exit code. Subcommands count
// only as the first argument: `inject -- lint` runs a program named lint.
func Main(args []string) int {
	return cli.Main("inject", args, os.Stderr, newRoot, subcommands)
}

// exitQuietly ends inject with code and no message.
func exitQuietly(code int) error { return cli.ExitQuietly(code) }

// newRoot is the ENTRYPOINT command with the help a newcomer reads first.
func newRoot() *cobra.Command {
	c := newRunCommand()
	c.Long = `inject resolves the secrets a workload declares (--config, INJECT_* variables,
references in the environment), checks them against the policy, writes them
as files on a tmpfs and starts the app: a container ENTRYPOINT wrapper.

A subcommand counts only as the first word: ` + "`inject -- NAME`" + ` always runs the
program NAME. Exit codes: the app's; 64 usage or declaration, 69 a provider
failed, 73 the directory, 77 the policy, 126/127 the app cannot start.`
	c.Example = `  inject --config /etc/app/inject.yaml -- /bin/app   # resolve, write, exec the app
  inject --config inject.yaml --dry-run              # print the plan; fetch nothing
  inject check --config inject.yaml                  # resolve each reference; write nothing
  inject lint docker-archive:image.tar               # scan an image for baked-in secrets
  inject policy vault --config inject.yaml           # print the minimal Vault policy
  inject wait --dir /run/secretbroker --timeout 30s  # wait for the broker's first delivery
  inject completion bash > /etc/bash_completion.d/inject`
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[cli.RunsPrograms] = "true"
	return c
}

// subcommands are looked up by the first argument only.
var subcommands = map[string]func() *cobra.Command{
	"lint":    cli.WithExample(newLintCommand, "  inject lint docker-archive:image.tar\n  inject lint --git-staged\n  inject lint --known-secrets inject.yaml docker-daemon:app:1.2"),
	"check":   cli.WithExample(newCheckCommand, "  inject check --config /etc/app/inject.yaml"),
	"policy":  cli.WithExample(newPolicyCommand, "  inject policy vault --config inject.yaml > app.hcl\n  inject policy audit --config inject.yaml"),
	"install": cli.WithExample(newInstallCommand, "  inject install /secretbroker/bin   # an init container copies inject into a shared volume"),
	"wait":    cli.WithExample(newWaitCommand, "  inject wait --dir /run/secretbroker --timeout 30s"),
	"version": cli.WithExample(func() *cobra.Command { return cli.VersionCommand("inject") }, "  inject version"),
}
