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
	"go.yaml.in/yaml/v3"

	"github.com/secretbroker/secretbroker/broker"
	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/spec"
)

// newHealthcheckCommand is the probe for Docker HEALTHCHECK and Kubernetes
// exec probes, in images with no shell or curl: GET /readyz on the running
// broker's --listen address, or (with --dir, or when the broker serves no
// HTTP) look for DIR/.ready.
func newHealthcheckCommand() *cobra.Command {
	var listen, dir, config string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the running broker is ready (GET /readyz on --listen, or DIR/.ready with --dir)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file := settings(config)
			if !cmd.Flags().Changed("listen") {
				listen = pick(os.Getenv("INJECT_LISTEN"), file.Listen, "127.0.0.1:9102")
			}
			useDir := cmd.Flags().Changed("dir") || listen == "off" || listen == ""
			if !cmd.Flags().Changed("dir") {
				dir = pick(os.Getenv("INJECT_DIR"), file.Dir, spec.DefaultDir)
			}
			if useDir {
				if _, err := os.Stat(filepath.Join(dir, broker.ReadyMarker)); err != nil {
					return cli.Exit(1, fmt.Errorf("not ready: %s has no %s yet", dir, broker.ReadyMarker))
				}
				fmt.Fprintln(cmd.OutOrStdout(), "ready")
				return nil
			}
			body, code, err := getReadyz(listen, timeout)
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
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:9102", "the broker's --listen address (host:port or unix socket path); also INJECT_LISTEN")
	c.Flags().StringVar(&dir, "dir", spec.DefaultDir, "check DIR/.ready instead of asking over HTTP; also INJECT_DIR")
	c.Flags().StringVar(&config, "config", os.Getenv("INJECT_CONFIG"), "config file to read listen: and dir: from; also INJECT_CONFIG")
	c.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return c
}

type fileSettings struct {
	Listen string `yaml:"listen"`
	Dir    string `yaml:"dir"`
}

func settings(config string) fileSettings {
	var s fileSettings
	if config == "" {
		return s
	}
	if b, err := os.ReadFile(config); err == nil {
		_ = yaml.Unmarshal(b, &s)
	}
	return s
}

func pick(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
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
