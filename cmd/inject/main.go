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
	return cli.Main("inject", args, os.Stderr, newRunCommand, subcommands)
}

// exitQuietly ends inject with code and no message.
func exitQuietly(code int) error { return cli.ExitQuietly(code) }

// subcommands are looked up by the first argument only.
var subcommands = map[string]func() *cobra.Command{
	"lint":    newLintCommand,
	"check":   newCheckCommand,
	"policy":  newPolicyCommand,
	"wait":    newWaitCommand,
	"version": func() *cobra.Command { return cli.VersionCommand("inject") },
}
