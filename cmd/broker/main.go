// Command broker is the sidecar that keeps secrets fresh: the inject
// pipeline on a schedule (package broker), with readiness, metrics and
// notifications. The command only wires packages.
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/internal/cli"
	_ "github.com/secretbroker/secretbroker/providers/builtin" // the providers this binary carries
)

func main() { os.Exit(Main(os.Args[1:])) }

// Main runs broker with args and returns its exit code. Subcommands count
// only as the first argument.
func Main(args []string) int {
	return cli.Main("broker", args, os.Stderr, newRunCommand, subcommands)
}

// subcommands are looked up by the first argument only.
var subcommands = map[string]func() *cobra.Command{
	"healthcheck": newHealthcheckCommand,
	"version":     func() *cobra.Command { return cli.VersionCommand("broker") },
}
