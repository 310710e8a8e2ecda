package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

// TestGenCerts: the serving certificate verifies against the CA for the
// Service's DNS names, and the key file is private.
func TestGenCerts(t *testing.T) {
	out := filepath.Join(t.TempDir(), "certs")
	if code := Main([]string{"gen-certs", "--service", "sbw", "--namespace", "ops", "--out", out}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	kp, err := tls.LoadX509KeyPair(filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(out, "ca.crt"))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	leaf, _ := x509.ParseCertificate(kp.Certificate[0])
	for _, name := range []string{"sbw.ops.svc", "sbw.ops.svc.cluster.local"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if st, _ := os.Stat(filepath.Join(out, "tls.key")); st.Mode().Perm() != 0o600 {
		t.Errorf("tls.key mode %o", st.Mode().Perm())
	}
	if code := Main([]string{"gen-certs"}); code != 64 {
		t.Errorf("gen-certs without --out: exit %d, want 64", code)
	}
	if code := Main([]string{"--listen", ":0"}); code != 64 {
		t.Errorf("serving without --tls-cert: exit %d, want 64", code)
	}
}
