package vault

// These tests need no Vault. The provider's behaviour against a real Vault
// is tested in internal/testenv/vault (its own Go module).

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/providers"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig(map[string]any{
		"address": "https://vault:8200",
		"kv":      map[string]any{"secret": 2, "old": "1"},
		"auth":    map[string]any{"method": "AppRole", "role_id_file": "/r", "secret_id_file": "/s", "remove_secret_id_file": true},
	}, env(map[string]string{"VAULT_ADDR": "https://ignored", "VAULT_NAMESPACE": "team-a", "VAULT_CACERT": "/ca.pem"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Address != "https://vault:8200" || cfg.Namespace != "team-a" || cfg.CAFile != "/ca.pem" {
		t.Errorf("block or variables not applied: %+v", cfg)
	}
	if cfg.Auth.Method != MethodAppRole || cfg.Auth.Mount != "approle" || cfg.KV["old"] != 1 {
		t.Errorf("auth defaults: %+v", cfg.Auth)
	}
	k, err := ParseConfig(map[string]any{"auth": map[string]any{"method": "kubernetes", "role": "app"}}, env(nil))
	if err != nil || k.Auth.JWTFile != DefaultServiceAccountTokenFile || k.Auth.Mount != "kubernetes" {
		t.Errorf("kubernetes defaults: %+v %v", k.Auth, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block map[string]any
		want  []string
	}{
		{"unknown method", map[string]any{"auth": map[string]any{"method": "ldap"}}, []string{`"ldap" is not one of`}},
		{"unknown key", map[string]any{"adress": "x"}, []string{"providers.vault.adress: unknown key"}},
		{"approle without role", map[string]any{"auth": map[string]any{"method": "approle"}}, []string{"approle needs role_id"}},
		{"both secret ids", map[string]any{"auth": map[string]any{"method": "approle", "role_id": "r", "secret_id": "s", "secret_id_file": "f"}}, []string{"secret_id or secret_id_file, not both"}},
		{"remove without file", map[string]any{"auth": map[string]any{"method": "approle", "role_id": "r", "remove_secret_id_file": true}}, []string{"remove_secret_id_file: needs secret_id_file"}},
		{"jwt without file and role", map[string]any{"auth": map[string]any{"method": "jwt"}}, []string{"jwt needs role", "jwt needs jwt_file"}},
		{"role with token", map[string]any{"auth": map[string]any{"role": "app"}}, []string{`auth.role: not used by auth method "token"`}},
		{"bad kv", map[string]any{"kv": map[string]any{"secret": 3}}, []string{"providers.vault.kv.secret: 3 is not a KV version"}},
		{"cert without key", map[string]any{"client_cert": "/c"}, []string{"client_cert and client_key go together"}},
		{"bad type", map[string]any{"auth": "approle"}, []string{"providers.vault"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(tc.block, env(nil))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestBadCAFile(t *testing.T) {
	_, err := New(context.Background(), providers.Env{Getenv: env(map[string]string{"VAULT_ADDR": "https://vault:8200", "VAULT_CACERT": "/nonexistent/ca.pem"})})
	if providers.KindOf(err) != providers.KindConfig || !strings.Contains(err.Error(), "TLS settings") || !strings.Contains(err.Error(), "/nonexistent/ca.pem") {
		t.Fatalf("want a config error naming the CA file, got %v", err)
	}
}

func TestNewNeedsAddress(t *testing.T) {
	_, err := New(context.Background(), providers.Env{Getenv: env(nil)})
	if err == nil || providers.KindOf(err) != providers.KindConfig || !strings.Contains(err.Error(), "VAULT_ADDR") {
		t.Fatalf("want a config error naming VAULT_ADDR, got %v", err)
	}
}

func ref(t *testing.T, s string) providers.Ref {
	t.Helper()
	r, err := providers.ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A Vault that accepts connections but never answers: the fetch ends at
// the deadline with KindTimeout.
func TestHangingVault(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	p, err := New(context.Background(), providers.Env{Getenv: env(map[string]string{"VAULT_ADDR": srv.URL, "VAULT_TOKEN": "t"})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	res := p.Fetch(ctx, []providers.Ref{ref(t, "vault://secret/app#k")})
	if k := providers.KindOf(res[0].Err); k != providers.KindTimeout {
		t.Fatalf("want timeout, got %v", res[0].Err)
	}
	if !strings.Contains(res[0].Err.Error(), "deadline") {
		t.Errorf("message does not say the deadline passed: %v", res[0].Err)
	}
}

func TestUnreachableVault(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close()
	zero := 0
	p, err := NewWithConfig(Config{Address: addr, MaxRetries: &zero}, providers.Env{Getenv: env(map[string]string{"VAULT_TOKEN": "t"})})
	if err != nil {
		t.Fatal(err)
	}
	res := p.Fetch(context.Background(), []providers.Ref{ref(t, "vault://secret/app#k")})
	if k := providers.KindOf(res[0].Err); k != providers.KindUnreachable || !strings.Contains(res[0].Err.Error(), "cannot reach Vault at "+addr) {
		t.Fatalf("want unreachable naming the address, got %v", res[0].Err)
	}
}

func TestPlanOffline(t *testing.T) {
	rs := []providers.Ref{
		ref(t, "vault://secret/app/db#password"),
		ref(t, "vault://secret/app/db?version=2#user"),
		ref(t, "vault://kv/team/x"),
		ref(t, "vault://database/creds/app#username"),
		ref(t, "vault://other/thing#k"),
	}
	pl, err := PlanFor(context.Background(), rs, Config{KV: map[string]int{"kv": 1, "database": 0, "secret": 2}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `# Minimal Vault policy generated by ` + "`inject policy vault`" + `.

# vault://database/creds/app#username
path "database/creds/app" {
  capabilities = ["read"]
}

# vault://kv/team/x
path "kv/team/x" {
  capabilities = ["read"]
}

# vault://other/thing#k
path "other/data/thing" {
  capabilities = ["read"]
}

# vault://secret/app/db#password, vault://secret/app/db?version=2#user
path "secret/data/app/db" {
  capabilities = ["read"]
}

# Renew the leases of dynamic secrets (inject --supervise, broker).
path "sys/leases/renew" {
  capabilities = ["update"]
}
`
	if got := pl.HCL(); got != want {
		t.Errorf("HCL:\n%s\nwant:\n%s", got, want)
	}
	if len(pl.Notes) != 1 || !strings.Contains(pl.Notes[0], "assumed other/ is a KV v2 mount") {
		t.Errorf("notes: %q", pl.Notes)
	}
	// Without dynamic paths there is no renew grant.
	pl, _ = PlanFor(context.Background(), rs[:2], Config{}, nil)
	if strings.Contains(pl.HCL(), "sys/leases/renew") {
		t.Error("renew grant without dynamic secrets")
	}
}

// What the client sends: the namespace header from VAULT_NAMESPACE, the
// token from the Getenv it was given (never the process environment).
func TestRequestHeaders(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "from-process-env")
	type seen struct{ token, ns, path string }
	got := make(chan seen, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Header.Get("X-Vault-Token"), r.Header.Get("X-Vault-Namespace"), r.URL.Path}
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/v1/sys/internal/ui/mounts/") {
			w.Write([]byte(`{"data":{"path":"kv/","type":"kv","options":{"version":"1"}}}`))
			return
		}
		w.Write([]byte(`{"data":{"k":"v"}}`))
	}))
	defer srv.Close()
	p, err := New(context.Background(), providers.Env{Getenv: env(map[string]string{"VAULT_ADDR": srv.URL, "VAULT_TOKEN": "given", "VAULT_NAMESPACE": "team-a"})})
	if err != nil {
		t.Fatal(err)
	}
	res := p.Fetch(context.Background(), []providers.Ref{ref(t, "vault://kv/app#k")})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	close(got)
	n := 0
	for s := range got {
		n++
		if s.token != "given" || s.ns != "team-a/" && s.ns != "team-a" {
			t.Errorf("%s: token %q namespace %q", s.path, s.token, s.ns)
		}
	}
	if n != 2 {
		t.Errorf("requests: %d, want a mount lookup and a read", n)
	}
}

func TestCredentialFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := dir + "/empty"
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		auth map[string]any
		want string
	}{
		{map[string]any{"token_file": dir + "/nope"}, "providers.vault.auth.token_file"},
		{map[string]any{"token_file": empty}, "is empty"},
		{map[string]any{"method": "approle", "role_id_file": dir + "/nope"}, "providers.vault.auth.role_id_file"},
		{map[string]any{"method": "kubernetes", "role": "app", "jwt_file": dir + "/nope"}, "providers.vault.auth.jwt_file"},
	} {
		p, err := New(context.Background(), providers.Env{Config: map[string]any{"address": "http://127.0.0.1:1", "auth": tc.auth}, Getenv: env(nil)})
		if err != nil {
			t.Fatal(err)
		}
		res := p.Fetch(context.Background(), []providers.Ref{ref(t, "vault://kv/app#k")})
		if providers.KindOf(res[0].Err) != providers.KindConfig || !strings.Contains(res[0].Err.Error(), tc.want) {
			t.Errorf("%v: want a config error naming %q, got %v", tc.auth, tc.want, res[0].Err)
		}
	}
}

// A server that answers with something other than Vault's JSON (a web
// page, a proxy's HTML 404) is a wrong address, not an unreachable Vault.
func TestNotVault(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusNotFound} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			w.Write([]byte("<html><body>It works!</body></html>"))
		}))
		zero := 0
		p, err := NewWithConfig(Config{Address: srv.URL, MaxRetries: &zero}, providers.Env{Getenv: env(map[string]string{"VAULT_TOKEN": "t"})})
		if err != nil {
			t.Fatal(err)
		}
		res := p.Fetch(context.Background(), []providers.Ref{ref(t, "vault://secret/app#k")})
		msg := res[0].Err.Error()
		if k := providers.KindOf(res[0].Err); k != providers.KindConfig || !strings.Contains(msg, srv.URL+" answers, but not like Vault") || strings.Contains(msg, "invalid character") || strings.Contains(msg, "\n") {
			t.Errorf("HTTP %d with HTML: kind %v, %s", status, providers.KindOf(res[0].Err), msg)
		}
		_, _, err = PolicyFor(context.Background(), providers.Env{Config: map[string]any{"address": srv.URL}, Getenv: env(map[string]string{"VAULT_TOKEN": "t"})}, []providers.Ref{ref(t, "vault://secret/app#k")})
		if err == nil || !strings.Contains(err.Error(), "not like Vault") {
			t.Errorf("HTTP %d with HTML: policy vault: %v", status, err)
		}
		srv.Close()
	}
}
