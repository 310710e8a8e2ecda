// Package vaulttest starts a real Vault in-process for the vault provider's
// tests: vault.NewTestCluster with a TLS listener, secret/ remounted as KV v2,
// a KV v1 mount kv1/, a leased passthrough mount leased/ (Vault's own
// LeasedPassthroughBackendFactory: every read hands out a renewable lease,
// standing in for a database engine), and the approle, jwt and kubernetes
// auth methods registered for the tests to enable. It is its own Go module
// so that the main module's `go test ./...` does not build Vault.
package vaulttest

import (
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	jwtauth "github.com/hashicorp/vault-plugin-auth-jwt"
	kubeauth "github.com/hashicorp/vault-plugin-auth-kubernetes"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/builtin/credential/approle"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"
)

// Cluster is a running test Vault.
type Cluster struct {
	TC        *vault.TestCluster
	Addr      string      // https://127.0.0.1:PORT
	CAFile    string      // PEM of the cluster's CA
	RootToken string      // never printed
	Root      *api.Client // a client with the root token
	Requests  *Counter    // every HTTP request Vault served
}

// SetLatency makes Vault's handler wait d before serving each request,
// standing in for the network round trip to a remote Vault.
func (c *Cluster) SetLatency(d time.Duration) { c.Requests.latency.Store(int64(d)) }

// Counter records the requests Vault's HTTP handler saw, as "METHOD /v1/path".
type Counter struct {
	mu      sync.Mutex
	seen    []string
	latency atomic.Int64
}

// Reset forgets what was recorded.
func (c *Counter) Reset() { c.mu.Lock(); c.seen = nil; c.mu.Unlock() }

// Seen returns the requests recorded since the last Reset, in order.
func (c *Counter) Seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

// Tally counts the recorded requests by "METHOD path", sorted.
func (c *Counter) Tally() map[string]int {
	out := map[string]int{}
	for _, s := range c.Seen() {
		out[s]++
	}
	return out
}

// Summary prints the tally one line each, for logs.
func (c *Counter) Summary() string {
	t := c.Tally()
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		if t[k] > 1 {
			b.WriteString(" x")
			b.WriteString(itoa(t[k]))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

// Start boots a one-core cluster and registers its cleanup.
func Start(t testing.TB) *Cluster {
	t.Helper()
	counter := &Counter{}
	handler := vaulthttp.HandlerFunc(func(props *vault.HandlerProperties) http.Handler {
		h := vaulthttp.Handler.Handler(props)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			counter.mu.Lock()
			counter.seen = append(counter.seen, r.Method+" "+r.URL.Path)
			counter.mu.Unlock()
			if d := time.Duration(counter.latency.Load()); d > 0 {
				select {
				case <-time.After(d):
				case <-r.Context().Done():
					return // the client gave up
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	tc := vault.NewTestCluster(t, &vault.CoreConfig{
		CredentialBackends: map[string]logical.Factory{
			"approle":    approle.Factory,
			"jwt":        jwtauth.Factory,
			"kubernetes": kubeauth.Factory,
		},
		LogicalBackends: map[string]logical.Factory{
			"kv":     kv.Factory,
			"leased": vault.LeasedPassthroughBackendFactory,
		},
	}, &vault.TestClusterOptions{HandlerFunc: handler, NumCores: 1,
		// Vault's own logs (TRACE by default) only at error level.
		Logger: hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Error}),
	})
	tc.Start()
	t.Cleanup(tc.Cleanup)
	core := tc.Cores[0]
	vault.TestWaitActive(t, core.Core)

	root := core.Client
	c := &Cluster{TC: tc, Addr: root.Address(), CAFile: tc.CACertPEMFile, RootToken: tc.RootToken, Root: root, Requests: counter}

	// The test cluster mounts secret/ as KV v1; the tests want KV v2 there,
	// as on a dev server.
	must(t, root.Sys().Unmount("secret"))
	must(t, root.Sys().Mount("secret", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}))
	for i := 0; ; i++ {
		// A new KV v2 mount answers "upgrading" for a moment.
		if _, err := root.Logical().Read("secret/config"); err == nil {
			break
		} else if i > 100 {
			t.Fatalf("secret/ (KV v2) did not become ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(t, root.Sys().Mount("kv1", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}))
	must(t, root.Sys().Mount("leased", &api.MountInput{Type: "leased"}))
	return c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Write writes data at an API path with the root token.
func (c *Cluster) Write(t testing.TB, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := c.Root.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	return s
}

// Token creates a token with exactly the given policies (no default
// policy unless listed) and returns it.
func (c *Cluster) Token(t testing.TB, policies ...string) string {
	t.Helper()
	s, err := c.Root.Auth().Token().Create(&api.TokenCreateRequest{Policies: policies, NoDefaultPolicy: !contains(policies, "default"), TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

// Policy writes an ACL policy.
func (c *Cluster) Policy(t testing.TB, name, hcl string) {
	t.Helper()
	must(t, c.Root.Sys().PutPolicy(name, hcl))
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
