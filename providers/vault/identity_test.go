package vault

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/secretbroker/secretbroker/providers"
)

// recorder is a fake Vault that logs each secret read (not the mount
// lookups) as NAMESPACE + the decoded API path. Mounts: "secret/" is KV v2,
// "kv/" is KV v1, and the lookup of anything under "locked/" is refused
// (403), as Vault does for a token without access to the lookup.
type recorder struct {
	mu    sync.Mutex
	reads []string
	paths []string // the same reads without the namespace
}

func (rc *recorder) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	if p, ok := strings.CutPrefix(path, "sys/internal/ui/mounts/"); ok {
		switch {
		case strings.HasPrefix(p, "secret/"):
			w.Write([]byte(`{"data":{"path":"secret/","type":"kv","options":{"version":"2"}}}`))
		case strings.HasPrefix(p, "kv/"):
			w.Write([]byte(`{"data":{"path":"kv/","type":"kv","options":{"version":"1"}}}`))
		default:
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"errors":["permission denied"]}`))
		}
		return
	}
	ns := strings.Trim(r.Header.Get("X-Vault-Namespace"), "/")
	if ns != "" {
		ns += "/"
	}
	rc.mu.Lock()
	rc.reads = append(rc.reads, ns+path)
	rc.paths = append(rc.paths, path)
	rc.mu.Unlock()
	if strings.HasPrefix(path, "secret/") {
		w.Write([]byte(`{"data":{"data":{"k":"v"},"metadata":{"version":1}}}`))
		return
	}
	w.Write([]byte(`{"data":{"k":"v"}}`))
}

func (rc *recorder) take() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	r := rc.reads
	rc.reads, rc.paths = nil, nil
	return r
}

// asked records what the gate was asked, refusing what deny matches.
type asked struct {
	mu   sync.Mutex
	ids  []string
	deny func(string) bool
}

func (a *asked) gate(id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ids = append(a.ids, id)
	if a.deny != nil && a.deny(id) {
		return errors.New("denied " + id)
	}
	return nil
}

func newRecorded(t testing.TB, ns string) (*Provider, *recorder) {
	rc := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(srv.Close)
	vars := map[string]string{"VAULT_ADDR": srv.URL, "VAULT_TOKEN": "given"}
	if ns != "" {
		vars["VAULT_NAMESPACE"] = ns
	}
	p, err := NewWithConfig(mustConfig(t, vars), providers.Env{Getenv: env(vars)})
	if err != nil {
		t.Fatal(err)
	}
	return p, rc
}

func mustConfig(t testing.TB, vars map[string]string) Config {
	cfg, err := ParseConfig(nil, env(vars))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The policy is asked about exactly what is read, under the namespace,
// and a read that could be a KV v2 secret under another name must pass as
// that name too.
func TestRequestIdentity(t *testing.T) {
	for _, tc := range []struct {
		name, ns, ref string
		deny          string   // the gate refuses this identity
		asked         []string // what the gate was asked
		read          string   // what reached Vault ("" = nothing)
	}{
		{"kv v2", "", "vault://secret/app/db#k", "", []string{"vault://secret/app/db"}, "secret/data/app/db"},
		{"leading slash", "", "vault:///secret/app/db#k", "", []string{"vault://secret/app/db"}, "secret/data/app/db"},
		{"escaped slash", "", "vault://secret%2Fapp/db#k", "", []string{"vault://secret/app/db"}, "secret/data/app/db"},
		{"namespace", "team-a", "vault://secret/app/db#k", "", []string{"vault://team-a/secret/app/db"}, "team-a/secret/data/app/db"},
		{"namespace denied", "team-b/", "vault://secret/app/db#k", "vault://team-b/secret/app/db", []string{"vault://team-b/secret/app/db"}, ""},
		{"kv v1", "", "vault://kv/app#k", "", []string{"vault://kv/app"}, "kv/app"},
		{"kv v2 data/ spelling is another secret", "", "vault://secret/data/admin#k", "vault://secret/admin", []string{"vault://secret/data/admin"}, "secret/data/data/admin"},
		{"unknown mount: data/ form denied", "", "vault://locked/data/admin#k", "vault://locked/admin", []string{"vault://locked/data/admin", "vault://locked/admin"}, ""},
		{"unknown mount: plain", "", "vault://locked/app#k", "", []string{"vault://locked/app"}, "locked/app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, rc := newRecorded(t, tc.ns)
			a := &asked{deny: func(id string) bool { return id == tc.deny }}
			ctx := providers.WithGate(context.Background(), a.gate)
			res := p.Fetch(ctx, []providers.Ref{ref(t, tc.ref)})
			if strings.Join(a.ids, " ") != strings.Join(tc.asked, " ") {
				t.Errorf("gate asked %q, want %q", a.ids, tc.asked)
			}
			reads := rc.take()
			if tc.read == "" {
				if len(reads) != 0 || providers.KindOf(res[0].Err) != providers.KindDenied {
					t.Fatalf("reads %q, err %v; want no read and a denial", reads, res[0].Err)
				}
				return
			}
			if res[0].Err != nil || len(reads) != 1 || reads[0] != tc.read {
				t.Fatalf("reads %q, err %v; want one read of %s", reads, res[0].Err, tc.read)
			}
		})
	}
}

// FuzzRequestIdentity: for any vault:// reference the parser accepts, the
// identity the policy matches before the run (Identity) is what the gate is
// asked at request time, and is what the provider sends: the read Vault
// receives, under its namespace, with the KV v2 "data/" taken out.
func FuzzRequestIdentity(f *testing.F) {
	for _, s := range []string{"secret/app/db", "/secret/x", "kv/a%2Fb", "locked/data/x", "secret/a b", "kv/%252e", "secret/app?version=2", "kv/ü/ß", "kv/a;b", "kv/a%3Fb#k"} {
		f.Add(s, "")
		f.Add(s, "ns1")
	}
	f.Fuzz(func(t *testing.T, path, ns string) {
		r, err := providers.ParseRef("vault://" + path)
		if err != nil {
			return
		}
		vars := map[string]string{"VAULT_NAMESPACE": ns}
		want, err := Identity(r, providers.Env{Getenv: env(vars)})
		if err != nil {
			return
		}
		p, rc := newRecorded(t, ns)
		a := &asked{}
		p.Fetch(providers.WithGate(context.Background(), a.gate), []providers.Ref{r})
		paths := rc.paths
		reads := rc.take()
		if len(reads) == 0 && len(a.ids) == 0 {
			return // nothing was sent (a namespace no HTTP header can carry)
		}
		if len(a.ids) == 0 || a.ids[0] != want {
			t.Fatalf("%q (ns %q): planned identity %q, gate asked %q", r.Raw, ns, want, a.ids)
		}
		if len(reads) != 1 {
			t.Fatalf("%q: reads %q, want one", r.Raw, reads)
		}
		// The namespace as Vault received it, then the path with KV v2's
		// "data/" taken out.
		got := strings.TrimSuffix(reads[0], paths[0])
		if rest, ok := strings.CutPrefix(paths[0], "secret/data/"); ok {
			got += "secret/" + rest
		} else {
			got += paths[0]
		}
		if "vault://"+got != want {
			t.Fatalf("%q (ns %q): policy matched %q, Vault received a read of %q", r.Raw, ns, want, reads[0])
		}
	})
}
