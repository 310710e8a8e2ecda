package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/internal/cli"
)

// WebhookBinary is the program `broker webhook` runs: the Kubernetes
// admission webhook lives in a binary of its own so the Kubernetes client
// libraries stay out of broker (bench/webhook.sh prints its size).
const WebhookBinary = "broker-webhook"

// newWebhookCommand execs broker-webhook, looked up next to this
// executable first, then on PATH, with every argument after `webhook`.
func newWebhookCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "webhook [gen-certs] [flags]",
		Short:              "Serve the Kubernetes mutating admission webhook (runs " + WebhookBinary + "; see its --help)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := findWebhook()
			if err != nil {
				return cli.Exit(127, err)
			}
			err = syscall.Exec(path, append([]string{"broker webhook"}, args...), os.Environ())
			return cli.Exit(126, fmt.Errorf("webhook: %s: %w", path, err))
		},
	}
}

func findWebhook() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), WebhookBinary)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(WebhookBinary); err == nil {
		return p, nil
	}
	return "", errors.New("webhook: " + WebhookBinary + " is neither next to broker nor on PATH (the secretbroker image ships it as /" + WebhookBinary + "; build it with go build ./cmd/" + WebhookBinary + ")")
}
