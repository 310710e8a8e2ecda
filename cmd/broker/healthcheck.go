package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/broker"
	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/spec"
	"github.com/secretbroker/secretbroker/tmpfs"
)

// newHealthcheckCommand is the probe for Docker HEALTHCHECK and Kubernetes
// exec probes, in images with no shell or curl: GET /readyz on the running
// broker's --listen address, or (with --dir, or when the broker serves no
// HTTP) look for DIR/.ready.
func newHealthcheckCommand() *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the running broker is ready (GET /readyz on --listen, or DIR/" + tmpfs.ReadyMarker + " with --dir)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The same order as the broker's own: flag, INJECT_*, config file.
			loc, err := spec.LoadLocation(cmd.Flags())
			if err != nil {
				return cli.Exit(cli.ExitUsage, err)
			}
			if cmd.Flags().Changed("dir") || loc.Listen == "off" || loc.Listen == "" {
				if _, err := os.Stat(filepath.Join(loc.Dir, tmpfs.ReadyMarker)); err != nil {
					return cli.Exit(1, fmt.Errorf("not ready: %s has no %s yet", loc.Dir, tmpfs.ReadyMarker))
				}
				fmt.Fprintln(cmd.OutOrStdout(), "ready")
				return nil
			}
			body, code, err := getReadyz(loc.Listen, timeout)
			if err != nil {
				return cli.Exit(1, fmt.Errorf("not ready: %v", err))
			}
			fmt.Fprint(cmd.OutOrStdout(), body)
			if code != http.StatusOK {
				return cli.Exit(1, fmt.Errorf("not ready (HTTP %d)", code))
			}
			return nil
		},
	}
	c.Flags().String("listen", spec.DefaultListen, "the broker's --listen address (host:port or unix socket path); also INJECT_LISTEN")
	c.Flags().String("dir", spec.DefaultDir, "check DIR/"+tmpfs.ReadyMarker+" instead of asking over HTTP; also INJECT_DIR")
	c.Flags().String("config", "", "config file to read listen: and dir: from; also INJECT_CONFIG")
	c.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return c
}

func getReadyz(listen string, timeout time.Duration) (string, int, error) {
	tr := &http.Transport{}
	url := "http://" + listen + "/readyz"
	if p, ok := broker.IsUnix(listen); ok {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", p)
		}
		url = "http://broker/readyz"
	} else if strings.HasPrefix(listen, ":") {
		url = "http://127.0.0.1" + listen + "/readyz"
	} else if h, port, err := net.SplitHostPort(listen); err == nil && (h == "0.0.0.0" || h == "::") {
		url = "http://" + net.JoinHostPort("127.0.0.1", port) + "/readyz"
	}
	cl := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := cl.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return string(b), resp.StatusCode, nil
}
