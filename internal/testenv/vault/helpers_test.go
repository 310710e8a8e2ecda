package vaulttest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/providers"
	sbvault "github.com/secretbroker/secretbroker/providers/vault"
)

// seeded starts a cluster holding the test data.
func seeded(t testing.TB) *Cluster {
	t.Helper()
	c := Start(t)
	seed(t, c)
	return c
}

// Test data: fake values built at run time.
var (
	dbPassword1 = "pw-one-" + randHex(8)
	dbPassword2 = "pw-two-" + randHex(8)
	kv1Token    = "kv1-" + randHex(8)
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	const hex = "0123456789abcdef"
	out := make([]byte, 2*n)
	for i, c := range b {
		out[2*i], out[2*i+1] = hex[c>>4], hex[c&15]
	}
	return string(out)
}

func seed(t testing.TB, c *Cluster) {
	c.Write(t, "secret/data/app/db", map[string]any{"data": map[string]any{"username": "app", "password": dbPassword1}})
	c.Write(t, "secret/data/app/db", map[string]any{"data": map[string]any{"username": "app", "password": dbPassword2, "port": 5432}})
	c.Write(t, "secret/data/app/api", map[string]any{"data": map[string]any{"key": "api-" + randHex(6)}})
	c.Write(t, "secret/data/app/other", map[string]any{"data": map[string]any{"key": "other-" + randHex(6)}})
	c.Write(t, "kv1/app/config", map[string]any{"token": kv1Token})
	c.Write(t, "leased/app", map[string]any{"username": "dyn-user", "password": "dyn-" + randHex(6), "ttl": "1h"})
	c.Policy(t, "app-read", `
path "secret/data/app/db" { capabilities = ["read"] }
path "secret/data/app/api" { capabilities = ["read"] }
path "leased/app" { capabilities = ["read"] }
`)
}

// logBuf collects a provider's logs and checks they hold no secret.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// open builds a provider against c from a providers.vault block and
// environment variables; VAULT_ADDR and VAULT_CACERT default to the cluster.
func open(t testing.TB, c *Cluster, block map[string]any, env map[string]string) (*sbvault.Provider, *logBuf) {
	return openN(t, c, block, env, 0)
}

// openN is open with concurrency reads in flight (0: the default).
func openN(t testing.TB, c *Cluster, block map[string]any, env map[string]string, concurrency int) (*sbvault.Provider, *logBuf) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["VAULT_ADDR"]; !ok {
		env["VAULT_ADDR"] = c.Addr
	}
	if _, ok := env["VAULT_CACERT"]; !ok {
		env["VAULT_CACERT"] = c.CAFile
	}
	logs := &logBuf{}
	pe := providers.Env{
		Config:      block,
		Getenv:      func(k string) string { return env[k] },
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Timeout:     20 * time.Second,
		Concurrency: concurrency,
	}
	p, err := sbvault.New(context.Background(), pe)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	vp := p.(*sbvault.Provider)
	t.Cleanup(func() { _ = vp.Close(context.Background()) })
	return vp, logs
}

func refs(t testing.TB, raw ...string) []providers.Ref {
	t.Helper()
	out := make([]providers.Ref, len(raw))
	for i, r := range raw {
		ref, err := providers.ParseRef(r)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = ref
	}
	return out
}

func fetch(t testing.TB, p providers.Provider, raw ...string) []providers.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Fetch(ctx, refs(t, raw...))
}

func value(t testing.TB, r providers.Result) string {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("unexpected error: %v", r.Err)
	}
	return string(r.Secret.Value.Reveal())
}

// wantErr checks a result failed with kind and a message holding every part.
func wantErr(t testing.TB, r providers.Result, kind providers.Kind, parts ...string) {
	t.Helper()
	if r.Err == nil {
		t.Fatalf("want a %s error, got a value", kind)
	}
	if k := providers.KindOf(r.Err); k != kind {
		t.Fatalf("want kind %s, got %s: %v", kind, k, r.Err)
	}
	for _, p := range parts {
		if !strings.Contains(r.Err.Error(), p) {
			t.Errorf("error %q does not mention %q", r.Err, p)
		}
	}
}

// noLeak fails if any of the secret values appear in s.
func noLeak(t testing.TB, what, s string, secrets ...string) {
	t.Helper()
	for _, v := range append(secrets, dbPassword1, dbPassword2, kv1Token) {
		if v != "" && strings.Contains(s, v) {
			t.Errorf("%s holds a secret value", what)
		}
	}
}

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// signJWT signs claims with ES256.
func signJWT(t testing.TB, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "ES256", "typ": "JWT"}) + "." + enc(claims)
	h := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func newKey(t testing.TB) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public().(crypto.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}
