package vaulttest

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretbroker/secretbroker/providers"
	sbvault "github.com/secretbroker/secretbroker/providers/vault"
)

// TestProvider runs the provider's cases against one real Vault.
func TestProvider(t *testing.T) {
	c := seeded(t)

	t.Run("kv2", func(t *testing.T) {
		p, logs := open(t, c, nil, map[string]string{"VAULT_TOKEN": c.RootToken})
		c.Requests.Reset()
		res := fetch(t, p,
			"vault://secret/app/db#password",
			"vault://secret/app/db#username",
			"vault://secret/app/db?version=1#password",
			"vault://secret/app/db#/port",
			"vault://secret/app/api",
		)
		if got := value(t, res[0]); got != dbPassword2 {
			t.Errorf("latest password: wrong value")
		}
		if res[0].Secret.Version != "2" || res[2].Secret.Version != "1" {
			t.Errorf("versions: got %q and %q, want 2 and 1", res[0].Secret.Version, res[2].Secret.Version)
		}
		if value(t, res[1]) != "app" {
			t.Errorf("username: wrong value")
		}
		if value(t, res[2]) != dbPassword1 {
			t.Errorf("?version=1: wrong value")
		}
		if value(t, res[3]) != "5432" {
			t.Errorf("number by JSON pointer: got %q", value(t, res[3]))
		}
		var whole map[string]any
		if err := json.Unmarshal(res[4].Secret.Value.Reveal(), &whole); err != nil || whole["key"] == nil {
			t.Errorf("no KEY: want the data object as JSON, got err %v", err)
		}
		// One mount lookup for secret/, one read per distinct path+version.
		tally := c.Requests.Tally()
		if n := tally["GET /v1/sys/internal/ui/mounts/secret/app/db"] + tally["GET /v1/sys/internal/ui/mounts/secret/app/api"]; n != 1 {
			t.Errorf("mount lookups: %d, want 1\n%s", n, c.Requests.Summary())
		}
		if n := tally["GET /v1/secret/data/app/db"]; n != 2 {
			t.Errorf("reads of secret/data/app/db: %d, want 2 (latest and version 1)\n%s", n, c.Requests.Summary())
		}
		if n := len(c.Requests.Seen()); n != 4 {
			t.Errorf("requests: %d, want 4\n%s", n, c.Requests.Summary())
		}
		noLeak(t, "logs", logs.String())
	})

	t.Run("kv1", func(t *testing.T) {
		p, _ := open(t, c, nil, map[string]string{"VAULT_TOKEN": c.RootToken})
		res := fetch(t, p, "vault://kv1/app/config#token", "vault://kv1/app/config?version=2#token", "vault://kv1/app/nothing")
		if value(t, res[0]) != kv1Token {
			t.Errorf("kv1: wrong value")
		}
		wantErr(t, res[1], providers.KindInvalid, "KV v2 only", "KV v1")
		wantErr(t, res[2], providers.KindNotFound, "KV v1 mount kv1/")
	})

	t.Run("missing", func(t *testing.T) {
		p, _ := open(t, c, nil, map[string]string{"VAULT_TOKEN": c.RootToken})
		res := fetch(t, p,
			"vault://secret/app/nothing#x",
			"vault://secret/app/db#nokey",
			"vault://secret/app/db?version=9#password",
			"vault://secret/data/app/db#password",
			"vault://nomount/app#x",
			"vault://secret#x",
		)
		wantErr(t, res[0], providers.KindNotFound, "vault://secret/app/nothing#x", "no secret at secret/app/nothing", "secret/data/app/nothing", "KV v2 mount secret/")
		wantErr(t, res[1], providers.KindNotFound, `no key "nokey"`, `"password"`, `"port"`, `"username"`)
		noLeak(t, "missing-key error", res[1].Err.Error())
		wantErr(t, res[2], providers.KindNotFound, "no version 9")
		wantErr(t, res[3], providers.KindNotFound, "`vault kv get` takes it: secret/app/db")
		wantErr(t, res[4], providers.KindNotFound, "nomount/app")
		wantErr(t, res[5], providers.KindInvalid, "the mount itself")
		t.Logf("no mount: %v", res[4].Err)
	})

	t.Run("denied", func(t *testing.T) {
		tok := c.Token(t, "default", "app-read")
		p, _ := open(t, c, nil, map[string]string{"VAULT_TOKEN": tok})
		res := fetch(t, p, "vault://secret/app/db#password", "vault://secret/app/other#key")
		if value(t, res[0]) != dbPassword2 {
			t.Error("allowed read: wrong value")
		}
		wantErr(t, res[1], providers.KindDenied, "vault://secret/app/other#key", "secret/data/app/other", "app-read", "default")
	})

	t.Run("hangs", func(t *testing.T) {
		p, _ := open(t, c, nil, map[string]string{"VAULT_TOKEN": c.RootToken})
		c.SetLatency(time.Minute)
		defer c.SetLatency(0)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res := p.Fetch(ctx, refs(t, "vault://secret/app/db#password"))
		wantErr(t, res[0], providers.KindTimeout, "did not answer before the deadline (--timeout)")
	})

	t.Run("no token", func(t *testing.T) {
		p, _ := open(t, c, nil, nil)
		res := fetch(t, p, "vault://secret/app/db#password")
		wantErr(t, res[0], providers.KindConfig, "VAULT_TOKEN")
	})

	t.Run("token file", func(t *testing.T) {
		f := writeFile(t, "token", c.Token(t, "app-read")+"\n")
		p, _ := open(t, c, map[string]any{"auth": map[string]any{"method": "token", "token_file": f}}, nil)
		res := fetch(t, p, "vault://secret/app/db#password")
		value(t, res[0])
		// A token inject was given is never revoked.
		if err := p.Handoff(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if res := fetch(t, p, "vault://secret/app/db#password"); res[0].Err != nil {
			t.Fatalf("the given token stopped working after Handoff/Close: %v", res[0].Err)
		}
	})

	t.Run("lease", func(t *testing.T) {
		p, logs := open(t, c, nil, map[string]string{"VAULT_TOKEN": c.RootToken})
		c.Requests.Reset()
		res := fetch(t, p, "vault://leased/app#username", "vault://leased/app#password")
		if value(t, res[0]) != "dyn-user" {
			t.Error("dynamic username: wrong value")
		}
		s := res[1].Secret
		if s.LeaseID == "" || !strings.HasPrefix(s.LeaseID, "leased/app/") || s.LeaseTTL != time.Hour || !s.Renewable {
			t.Errorf("lease kept: id %q ttl %v renewable %v", s.LeaseID, s.LeaseTTL, s.Renewable)
		}
		if res[0].Secret.LeaseID != s.LeaseID {
			t.Error("two keys of one dynamic path were read twice (two leases)")
		}
		if n := c.Requests.Tally()["GET /v1/leased/app"]; n != 1 {
			t.Errorf("reads of leased/app: %d, want 1", n)
		}
		if err := p.Handoff(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "expire at their TTL") {
			t.Errorf("exec mode with a lease: no expiry warning in the logs:\n%s", logs.String())
		}
		// Close with a given token revokes the leases it read.
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Root.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": s.LeaseID}); err == nil {
			t.Error("the lease is still alive after Close")
		}
	})

	t.Run("keep renews", func(t *testing.T) {
		c.Write(t, "leased/short", map[string]any{"v": "x", "ttl": "4s"})
		p, logs := open(t, c, nil, map[string]string{"VAULT_TOKEN": c.RootToken})
		res := fetch(t, p, "vault://leased/short#v")
		value(t, res[0])
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		p.Keep(ctx) // renews at ~2.7s, so the lease lives until ~6.7s
		if n := strings.Count(logs.String(), "renewed lease"); n < 1 {
			t.Errorf("Keep renewed the 4s lease %d times in 4s, want at least 1:\n%s", n, logs.String())
		}
		lk, err := c.Root.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": res[0].Secret.LeaseID})
		if err != nil || lk == nil {
			t.Fatalf("the lease expired although Keep ran: %v", err)
		}
		if lk.Data["last_renewal"] == nil {
			t.Error("Vault records no renewal of the lease")
		}
	})

	t.Run("approle", func(t *testing.T) {
		roleID, secretID := approleSetup(t, c)
		sidFile := writeFile(t, "secret-id", secretID)
		p, logs := open(t, c, map[string]any{"auth": map[string]any{
			"method": "approle", "role_id": roleID, "secret_id_file": sidFile, "remove_secret_id_file": true,
		}}, nil)
		c.Requests.Reset()
		res := fetch(t, p, "vault://secret/app/db#password", "vault://secret/app/api#key")
		if value(t, res[0]) != dbPassword2 {
			t.Error("approle read: wrong value")
		}
		value(t, res[1])
		if n := c.Requests.Tally()["PUT /v1/auth/approle/login"]; n != 1 {
			t.Errorf("logins: %d, want 1\n%s", n, c.Requests.Summary())
		}
		if _, err := os.Stat(sidFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove_secret_id_file: the file is still there (%v)", err)
		}
		ok, accessor := p.LoggedIn()
		if !ok || accessor == "" {
			t.Fatal("no login token recorded")
		}
		// No lease depends on the login token: Handoff revokes it before the app starts.
		if err := p.Handoff(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Root.Auth().Token().LookupAccessor(accessor); err == nil {
			t.Error("the login token is still alive after Handoff")
		}
		noLeak(t, "logs", logs.String(), secretID, roleID)
	})

	t.Run("approle keeps token for leases", func(t *testing.T) {
		roleID, secretID := approleSetup(t, c)
		p, logs := open(t, c, map[string]any{"auth": map[string]any{"method": "approle", "role_id": roleID, "secret_id": secretID}}, nil)
		res := fetch(t, p, "vault://leased/app#username")
		value(t, res[0])
		_, accessor := p.LoggedIn()
		if err := p.Handoff(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Root.Auth().Token().LookupAccessor(accessor); err != nil {
			t.Errorf("the login token the lease belongs to was revoked at Handoff: %v", err)
		}
		if !strings.Contains(logs.String(), "login token is left alive") {
			t.Errorf("no warning that the token stays alive:\n%s", logs.String())
		}
		// Close (end of a supervised run) revokes the token and so the lease.
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Root.Auth().Token().LookupAccessor(accessor); err == nil {
			t.Error("the login token is alive after Close")
		}
		// Vault revokes a token's leases in the background: give it a moment.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := c.Root.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": res[0].Secret.LeaseID})
			if err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Error("the lease is alive 10 s after Close")
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("approle wrapped", func(t *testing.T) {
		roleID, _ := approleSetup(t, c)
		wc, err := c.Root.Clone()
		if err != nil {
			t.Fatal(err)
		}
		wc.SetToken(c.RootToken)
		wc.SetWrappingLookupFunc(func(string, string) string { return "5m" })
		w, err := wc.Logical().Write("auth/approle/role/app/secret-id", nil)
		if err != nil || w.WrapInfo == nil {
			t.Fatalf("wrapped secret id: %v", err)
		}
		block := map[string]any{"auth": map[string]any{
			"method": "approle", "role_id": roleID, "secret_id": w.WrapInfo.Token,
			"secret_id_response_wrapping_path": "auth/approle/role/app/secret-id",
		}}
		p, _ := open(t, c, block, nil)
		value(t, fetch(t, p, "vault://secret/app/db#password")[0])

		// Single use: the same wrapping token cannot log in again.
		p2, _ := open(t, c, block, nil)
		wantErr(t, fetch(t, p2, "vault://secret/app/db#password")[0], providers.KindDenied, "works once")

		// A wrapping token from another path is refused before unwrapping.
		w2, err := wc.Logical().Write("sys/wrapping/wrap", map[string]any{"secret_id": "not-a-secret-id"})
		if err != nil {
			t.Fatal(err)
		}
		block["auth"].(map[string]any)["secret_id"] = w2.WrapInfo.Token
		p3, _ := open(t, c, block, nil)
		wantErr(t, fetch(t, p3, "vault://secret/app/db#password")[0], providers.KindDenied, "sys/wrapping/wrap", "refusing")
	})

	t.Run("jwt", func(t *testing.T) {
		key, pub := newKey(t)
		mustDo(t, c.Root.Sys().EnableAuthWithOptions("jwt", &api.EnableAuthOptions{Type: "jwt"}))
		c.Write(t, "auth/jwt/config", map[string]any{"jwt_validation_pubkeys": []string{pub}})
		c.Write(t, "auth/jwt/role/app", map[string]any{
			"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"secretbroker-test"},
			"token_policies": []string{"app-read"}, "token_ttl": "10m",
		})
		now := time.Now()
		jwt := signJWT(t, key, map[string]any{"sub": "app", "aud": "secretbroker-test", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
		p, _ := open(t, c, map[string]any{"auth": map[string]any{"method": "jwt", "role": "app", "jwt_file": writeFile(t, "jwt", jwt)}}, nil)
		if value(t, fetch(t, p, "vault://secret/app/db#password")[0]) != dbPassword2 {
			t.Error("jwt: wrong value")
		}
		// Handoff revokes the login token; the broker's next cycle (another
		// Fetch through the same provider) logs in again.
		mustDo(t, p.Handoff(context.Background(), true))
		if ok, _ := p.LoggedIn(); ok {
			t.Error("the login token survived Handoff with no lease")
		}
		c.Requests.Reset()
		if value(t, fetch(t, p, "vault://secret/app/db#password")[0]) != dbPassword2 {
			t.Error("jwt after re-login: wrong value")
		}
		if n := c.Requests.Tally()["PUT /v1/auth/jwt/login"]; n != 1 {
			t.Errorf("logins after the revocation: %d, want 1", n)
		}
		// A token signed by another key is refused.
		other, _ := newKey(t)
		bad := signJWT(t, other, map[string]any{"sub": "app", "aud": "secretbroker-test", "exp": now.Add(5 * time.Minute).Unix()})
		p2, _ := open(t, c, map[string]any{"auth": map[string]any{"method": "jwt", "role": "app", "jwt_file": writeFile(t, "jwt", bad)}}, nil)
		wantErr(t, fetch(t, p2, "vault://secret/app/db#password")[0], providers.KindInvalid, "logging in with jwt at auth/jwt/login")
	})

	t.Run("kubernetes", func(t *testing.T) {
		key, _ := newKey(t)
		saJWT := signJWT(t, key, map[string]any{
			"iss":                                    "kubernetes/serviceaccount",
			"kubernetes.io/serviceaccount/namespace": "prod",
			"kubernetes.io/serviceaccount/service-account.name": "app",
			"kubernetes.io/serviceaccount/service-account.uid":  "uid-1234",
			"sub": "system:serviceaccount:prod:app",
		})
		reviews := 0
		// The TokenReview endpoint of a Kubernetes API server: it knows one token.
		k8s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" || r.Method != http.MethodPost {
				http.NotFound(w, r)
				return
			}
			reviews++
			var tr struct {
				Spec struct {
					Token string `json:"token"`
				} `json:"spec"`
			}
			_ = json.NewDecoder(r.Body).Decode(&tr)
			status := map[string]any{"authenticated": false}
			if tr.Spec.Token == saJWT {
				status = map[string]any{"authenticated": true, "user": map[string]any{"username": "system:serviceaccount:prod:app", "uid": "uid-1234"}}
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status})
		}))
		defer k8s.Close()
		caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k8s.Certificate().Raw}))

		mustDo(t, c.Root.Sys().EnableAuthWithOptions("k8s", &api.EnableAuthOptions{Type: "kubernetes"}))
		c.Write(t, "auth/k8s/config", map[string]any{
			"kubernetes_host": k8s.URL, "kubernetes_ca_cert": caPEM, "token_reviewer_jwt": "reviewer-" + randHex(4), "disable_local_ca_jwt": true,
		})
		c.Write(t, "auth/k8s/role/app", map[string]any{
			"bound_service_account_names": []string{"app"}, "bound_service_account_namespaces": []string{"prod"},
			"token_policies": []string{"app-read"}, "audience": "",
		})
		p, _ := open(t, c, map[string]any{"auth": map[string]any{"method": "kubernetes", "mount": "k8s", "role": "app", "jwt_file": writeFile(t, "token", saJWT)}}, nil)
		if value(t, fetch(t, p, "vault://secret/app/db#password")[0]) != dbPassword2 {
			t.Error("kubernetes: wrong value")
		}
		if reviews != 1 {
			t.Errorf("TokenReview calls: %d, want 1", reviews)
		}
		// A token the API server does not know is refused.
		other := signJWT(t, key, map[string]any{
			"iss":                                    "kubernetes/serviceaccount",
			"kubernetes.io/serviceaccount/namespace": "prod",
			"kubernetes.io/serviceaccount/service-account.name": "app",
			"kubernetes.io/serviceaccount/service-account.uid":  "uid-9999",
		})
		p2, _ := open(t, c, map[string]any{"auth": map[string]any{"method": "kubernetes", "mount": "k8s", "role": "app", "jwt_file": writeFile(t, "token", other)}}, nil)
		wantErr(t, fetch(t, p2, "vault://secret/app/db#password")[0], providers.KindDenied, "logging in with kubernetes at auth/k8s/login")
	})
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var approleOnce = map[*Cluster]bool{}

// approleSetup enables AppRole (once) with role "app" reading app-read,
// and returns its role id and a fresh secret id.
func approleSetup(t testing.TB, c *Cluster) (roleID, secretID string) {
	t.Helper()
	if !approleOnce[c] {
		mustDo(t, c.Root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}))
		c.Write(t, "auth/approle/role/app", map[string]any{"token_policies": []string{"app-read"}, "token_ttl": "10m", "secret_id_num_uses": 1})
		approleOnce[c] = true
	}
	r, err := c.Root.Logical().Read("auth/approle/role/app/role-id")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Write(t, "auth/approle/role/app/secret-id", nil)
	return r.Data["role_id"].(string), s.Data["secret_id"].(string)
}

// TestSealed: a sealed Vault is reported as such, within the deadline.
func TestSealed(t *testing.T) {
	c := Start(t)
	c.TC.Cores[0].Seal(t)
	p, _ := open(t, c, nil, map[string]string{"VAULT_TOKEN": c.RootToken})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res := p.Fetch(ctx, refs(t, "vault://secret/app/db#password"))
	wantErr(t, res[0], providers.KindUnreachable, "sealed", "vault operator unseal")
	if n := c.Requests.Tally()["GET /v1/sys/internal/ui/mounts/secret/app/db"]; n < 2 {
		t.Errorf("503 from a sealed Vault was not retried (%d requests)", n)
	}
}

var _ = sbvault.ProbeName
