package onepassword

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/secretbroker/secretbroker/internal/testenv/opconnect"
	"github.com/secretbroker/secretbroker/providers"
)

// itemRead is a Connect request that reads an item (its values or its
// files): /v1/vaults/VAULT-ID/items/ITEM-ID[/...]. The list of a vault's
// items (/items?filter=) and the vault lookups hold no value.
var itemRead = regexp.MustCompile(`^/v1/vaults/([^/?]+)/items/([^/?]+)`)

// uriRecorder sits in front of the Connect test server and notes the
// request URI of every request as it left the provider.
type uriRecorder struct {
	mu   sync.Mutex
	uris []string
}

func (rc *uriRecorder) take() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := rc.uris
	rc.uris = nil
	return out
}

func newURIRecorder(t testing.TB, upstream string) (*uriRecorder, string) {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	rc := &uriRecorder{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.uris = append(rc.uris, r.URL.RequestURI())
		rc.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return rc, ts.URL
}

// FuzzConnectIdentity: for any op:// reference the parser accepts, every
// item Connect is asked to read is the one the policy matched: the
// identity spelt with that vault's and item's names (as the test server
// holds them) is the one the gate was asked about, and it agrees with the
// plan's identity (Identity) on every part the plan knew (a part written
// by id is PlanName there, and the read is of that very id). A refusing
// gate means no item is read at all (only the value-free lookups).
func FuzzConnectIdentity(f *testing.F) {
	fx := newFixture(f)
	// A vault and an item whose names differ from the fixture's only in
	// case and spaces, and a vault holding an item of the same title.
	odd := fx.srv.AddVault("prod 2")
	oddItem := odd.AddItem(&opconnect.Item{Title: "Database", Fields: []opconnect.Field{{Label: "password", Type: "CONCEALED", Value: fakeValue(f, "pw2")}}})
	vaults := map[string]*opconnect.Vault{}
	items := map[string]*opconnect.Item{}
	for _, v := range []*opconnect.Vault{fx.prod, fx.staging, fx.secret, odd} {
		vaults[v.ID] = v
		for _, it := range v.Items {
			items[it.ID] = it
		}
	}
	for _, s := range []string{
		"Prod/Database/password", "PROD/database/password", "Prod/Database/Admin/password",
		"Prod/Stripe/publishable-key", "Prod/deploy key/private key?ssh-format=openssh",
		"Prod/Database/ca.pem", "Prod/Database/password?attribute=otp", "Prod/twin/x",
		"Staging/Database/password", "prod 2/database/password", "Finance/nope/password",
		fx.prod.ID + "/Database/password", "Prod/" + fx.db.ID + "/password",
		fx.prod.ID + "/" + fx.db.ID + "/password", odd.ID + "/" + oddItem.ID + "/password",
		fx.staging.ID + "/" + fx.db.ID + "/password", "Prod/" + oddItem.ID + "/password",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	rc, host := newURIRecorder(f, fx.srv.URL)
	env := fx.env(map[string]string{EnvConnectHost: host})
	p, err := New(context.Background(), env)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string, deny bool) {
		r, err := providers.ParseRef(Scheme + "://" + path)
		if err != nil {
			return
		}
		want, err := Identity(r, env)
		if err != nil {
			return
		}
		var mu sync.Mutex
		var asked []string
		gate := func(id string) error {
			mu.Lock()
			asked = append(asked, id)
			mu.Unlock()
			if deny {
				return providers.Errorf(providers.Ref{}, providers.KindDenied, "denied")
			}
			return nil
		}
		rc.take()
		res := p.Fetch(providers.WithGate(context.Background(), gate), []providers.Ref{r})
		vpart, ipart, _, _ := Parts(r)
		read := false
		for _, uri := range rc.take() {
			m := itemRead.FindStringSubmatch(uri)
			if m == nil {
				continue
			}
			read = true
			if deny {
				t.Fatalf("%q: the gate refused, yet %s was requested", r.Raw, uri)
			}
			v, it := vaults[m[1]], items[m[2]]
			if v == nil || it == nil {
				t.Fatalf("%q: %s reads no item of the server's", r.Raw, uri)
			}
			got := identity(r, canonName(v.Name), canonName(it.Title))
			if !slices.Contains(asked, got) {
				t.Fatalf("%q: read %s, which is %q; the gate was asked %q", r.Raw, uri, got, asked)
			}
			// The plan's identity, with each part written by id replaced by
			// the name Connect has for that very id.
			segs := strings.Split(strings.TrimPrefix(want, Scheme+"://"), "/")
			if byID(vpart) {
				if !strings.EqualFold(m[1], vpart) || segs[0] != PlanName {
					t.Fatalf("%q: planned %q, read %s", r.Raw, want, uri)
				}
				segs[0] = canonName(v.Name)
			}
			if byID(ipart) {
				if !strings.EqualFold(m[2], ipart) || segs[1] != PlanName {
					t.Fatalf("%q: planned %q, read %s", r.Raw, want, uri)
				}
				segs[1] = canonName(it.Title)
			}
			plan := Scheme + "://" + strings.Join(segs, "/")
			if plan != got {
				t.Fatalf("%q: plan checked %q (by names %q), Connect read %s, which is %q", r.Raw, want, plan, uri, got)
			}
		}
		if !read && res[0].Err == nil {
			t.Fatalf("%q: a value without an item read", r.Raw)
		}
	})
}
