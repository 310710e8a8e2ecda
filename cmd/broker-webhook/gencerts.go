package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/secretbroker/secretbroker/internal/cli"
)

// newGenCerts makes a CA and a serving certificate for the webhook's
// Service, for clusters without cert-manager.
func newGenCerts() *cobra.Command {
	var service, namespace, out string
	var days int
	c := &cobra.Command{
		Use:   "gen-certs --service NAME --namespace NS --out DIR",
		Short: "Write a CA and a serving certificate for the webhook's Service (when cert-manager is not installed)",
		Long: `gen-certs writes DIR/ca.crt, DIR/tls.crt and DIR/tls.key: a new CA (its key
is not kept) and an ECDSA P-256 certificate for NAME, NAME.NS, NAME.NS.svc
and NAME.NS.svc.cluster.local. Put tls.crt and tls.key in the Secret the
Deployment mounts, and ca.crt (base64) in the MutatingWebhookConfiguration's
caBundle; deploy/kubernetes/README.md shows the commands.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if service == "" || namespace == "" || out == "" {
				return cli.Exit(cli.ExitUsage, errors.New("--service, --namespace and --out are required"))
			}
			ca, caKey, err := newCert(&x509.Certificate{
				Subject:               pkix.Name{CommonName: "secretbroker webhook CA"},
				IsCA:                  true,
				BasicConstraintsValid: true,
				KeyUsage:              x509.KeyUsageCertSign,
			}, nil, nil, days)
			if err != nil {
				return err
			}
			dns := []string{service, service + "." + namespace, service + "." + namespace + ".svc", service + "." + namespace + ".svc.cluster.local"}
			leaf, leafKey, err := newCert(&x509.Certificate{
				Subject:     pkix.Name{CommonName: dns[2]},
				DNSNames:    dns,
				KeyUsage:    x509.KeyUsageDigitalSignature,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			}, ca, caKey, days)
			if err != nil {
				return err
			}
			der, err := x509.MarshalPKCS8PrivateKey(leafKey)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return cli.Exit(cli.ExitDir, err)
			}
			for _, f := range []struct {
				name, typ string
				der       []byte
				mode      os.FileMode
			}{{"ca.crt", "CERTIFICATE", ca.Raw, 0o644}, {"tls.crt", "CERTIFICATE", leaf.Raw, 0o644}, {"tls.key", "PRIVATE KEY", der, 0o600}} {
				b := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
				if err := os.WriteFile(filepath.Join(out, f.name), b, f.mode); err != nil {
					return cli.Exit(cli.ExitDir, err)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s/{ca.crt,tls.crt,tls.key} for %s, valid %d days\n", out, dns[2], days)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&service, "service", "secretbroker-webhook", "the webhook's Service name")
	f.StringVar(&namespace, "namespace", "secretbroker", "the webhook's namespace")
	f.StringVar(&out, "out", "", "directory to write ca.crt, tls.crt and tls.key into")
	f.IntVar(&days, "days", 365, "validity in days")
	return c
}

func newCert(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, days int) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Duration(days) * 24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}
