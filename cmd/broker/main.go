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
	return cli.Main("broker", args, os.Stderr, newRoot, subcommands)
}

// newRoot is the sidecar command with the help a newcomer reads first.
func newRoot() *cobra.Command {
	c := newRunCommand()
	c.Long = `broker runs the inject pipeline on a schedule beside the app (a compose
service, a Kubernetes native sidecar or init container): it keeps the secret
files fresh in a tmpfs directory it shares with the app, marks DIR/.ready
after the first delivery, and serves /healthz, /readyz and /metrics.

SIGHUP re-reads every secret now; SIGTERM stops, leaving the files for the
app unless --wipe-on-exit. Exit codes: 64 usage or declaration, 69 a provider
failed (--once), 73 the directory.`
	c.Example = `  broker --config /etc/secretbroker/broker.yaml  # keep the files fresh
  broker --config broker.yaml --once             # init container: write, mark .ready, exit
  broker healthcheck                             # exit 0 when the running broker is ready
  broker webhook --listen :8443 --tls-cert tls.crt --tls-key tls.key --image IMAGE  # Kubernetes
  broker completion bash > /etc/bash_completion.d/broker`
	return c
}

// subcommands are looked up by the first argument only.
var subcommands = map[string]func() *cobra.Command{
	"healthcheck": cli.WithExample(newHealthcheckCommand, "  broker healthcheck\n  broker healthcheck --dir /run/secretbroker"),
	"webhook":     cli.WithExample(newWebhookCommand, "  broker webhook --listen :8443 --tls-cert tls.crt --tls-key tls.key --image IMAGE\n  broker webhook gen-certs --out certs/"),
	"version":     cli.WithExample(func() *cobra.Command { return cli.VersionCommand("broker") }, "  broker version"),
}
