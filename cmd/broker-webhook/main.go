// Command broker-webhook is the Kubernetes mutating admission webhook
// (package webhook), a binary of its own so that the Kubernetes client
// libraries stay out of inject and broker; `broker webhook ...` runs it.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/secretbroker/secretbroker/internal/cli"
	_ "github.com/secretbroker/secretbroker/providers/builtin" // references are validated as inject parses them
	"github.com/secretbroker/secretbroker/webhook"
)

func main() { os.Exit(Main(os.Args[1:])) }

// Main runs the webhook with args and returns its exit code.
func Main(args []string) int {
	return cli.Main("broker webhook", args, os.Stderr, newServe, map[string]func() *cobra.Command{
		"gen-certs": cli.WithExample(newGenCerts, "  broker webhook gen-certs --service secretbroker-webhook --namespace secretbroker --out certs/"),
		"version":   func() *cobra.Command { return cli.VersionCommand("broker-webhook") },
	})
}

func newServe() *cobra.Command {
	var listen, cert, key, image, namespace string
	var exclude []string
	var noPullSecrets bool
	c := &cobra.Command{
		Use:   "broker webhook --listen ADDR --tls-cert FILE --tls-key FILE",
		Short: "Serve the mutating admission webhook (AdmissionReview v1 at /mutate)",
		Long: `broker webhook serves AdmissionReview v1 over TLS at /mutate: pods annotated
secretbroker.io/inject: "true" get inject (copied by an init container into a
memory volume) in front of their command, and with secretbroker.io/refresh
the broker as a native sidecar. It also serves /healthz and /metrics, reloads
its certificate when the files change, and logs JSON to stderr.

Pods in kube-system and in --namespace (its own) are never changed. A pod
with no command has its image's ENTRYPOINT and CMD read from the registry,
with the pod's imagePullSecrets and then the webhook's own credentials. A pod
with both secretbroker.io/config and secretbroker.io/refresh has its
ConfigMap read, to name the app's NAME_FILE variables.`,
		Example: `  broker webhook --listen :8443 --tls-cert /tls/tls.crt --tls-key /tls/tls.key --image ghcr.io/secretbroker/secretbroker:0.1.0
  broker webhook gen-certs --service secretbroker-webhook --namespace secretbroker --out certs/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cert == "" || key == "" || image == "" {
				return cli.Exit(cli.ExitUsage, errors.New("--tls-cert, --tls-key and --image are required"))
			}
			log, err := cli.NewLogger(cmd.Flags(), os.Stderr)
			if err != nil {
				return err
			}
			reg := &webhook.Registry{Timeout: 5 * time.Second}
			o := webhook.Options{Image: image, Images: reg}
			if rc, err := rest.InClusterConfig(); err == nil {
				client, err := kubernetes.NewForConfig(rc)
				if err != nil {
					return err
				}
				o.ConfigMaps = webhook.KubeConfigMaps{Client: client}
				if !noPullSecrets {
					reg.Client = client
				}
			} else {
				log.Warn("not in a cluster: imagePullSecrets and ConfigMaps will not be read", "error", err.Error())
			}
			excluded := append([]string{"kube-system"}, exclude...)
			if namespace != "" {
				excluded = append(excluded, namespace)
			}
			o.Excluded = excluded
			srv := webhook.NewServer(o, log)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			log.Info("serving", "listen", listen, "image", image, "excluded", strings.Join(excluded, ","))
			return webhook.ListenAndServe(ctx, listen, &webhook.CertReloader{CertFile: cert, KeyFile: key}, srv.Handler())
		},
	}
	f := c.Flags()
	f.StringVar(&listen, "listen", ":8443", "address to serve TLS on")
	f.StringVar(&cert, "tls-cert", "", "PEM certificate (chain); re-read when it changes")
	f.StringVar(&key, "tls-key", "", "PEM private key; re-read when it changes")
	f.StringVar(&image, "image", os.Getenv("SECRETBROKER_IMAGE"), "the image holding /inject and /broker (also SECRETBROKER_IMAGE)")
	f.StringVar(&namespace, "namespace", os.Getenv("POD_NAMESPACE"), "the webhook's own namespace, never mutated (also POD_NAMESPACE)")
	f.StringSliceVar(&exclude, "exclude-namespace", nil, "more namespaces to leave alone (kube-system always is)")
	f.BoolVar(&noPullSecrets, "no-pull-secrets", false, "do not read pods' imagePullSecrets (then the RBAC needs no secrets access)")
	cli.AddLogFlags(f)
	lf := f.Lookup("log-format")
	lf.Value.Set("json")
	lf.DefValue = "json"
	return c
}
