package onepassword

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/policy"
	"github.com/secretbroker/secretbroker/providers"
)

// A vault or item written by its id is checked under its name too, so a
// deny on the names holds for the ids.
func TestConnectRequestIdentity(t *testing.T) {
	f := newFixture(t)
	p := newProvider(t, f.env(nil))
	for _, tc := range []struct{ name, deny, ref string }{
		{"vault by id", "op://prod/database/password", "op://" + f.prod.ID + "/Database/password"},
		{"item by id", "op://prod/database/password", "op://Prod/" + f.db.ID + "/password"},
		{"both by id", "op://prod/database/password", "op://" + f.prod.ID + "/" + f.db.ID + "/password"},
		{"as written", "op://prod/database/password", "op://PROD/database/password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := func(id string) error {
				if id == tc.deny {
					return errors.New("denied " + id)
				}
				return nil
			}
			res := p.Fetch(providers.WithGate(context.Background(), gate), parse(t, tc.ref))
			if providers.KindOf(res[0].Err) != providers.KindDenied || res[0].Secret.Value.Len() != 0 {
				t.Fatalf("%s: %v; want a denial and no value", tc.ref, res[0].Err)
			}
		})
	}
}

// TestConnectPolicyByNames: a policy written with names decides the same
// way whether a reference names the vault and the item or gives their
// ids, and decides before the item (its values) is read: only the vault
// and the item list, which hold no value, are asked first.
func TestConnectPolicyByNames(t *testing.T) {
	f := newFixture(t)
	byName := "op://Prod/Database/password"
	byIDs := "op://" + f.prod.ID + "/" + f.db.ID + "/password"
	vaultID := "op://" + f.prod.ID + "/Database/password"
	itemID := "op://Prod/" + f.db.ID + "/password"
	for _, tt := range []struct {
		name, policy string
		allowed      bool
	}{
		{"allow by names", `allow: ["op://prod/database/*"]`, true},
		{"allow another vault", `allow: ["op://staging/**"]`, false},
		{"deny by names", "allow: [\"op://**\"]\ndeny: [\"op://prod/database/**\"]", false},
		{"deny the vault", "allow: [\"op://**\"]\ndeny: [\"op://prod/**\"]", false},
		{"deny another item", "allow: [\"op://**\"]\ndeny: [\"op://prod/stripe/**\"]", true},
	} {
		pol, err := policy.Parse("p.yaml", []byte(tt.policy+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{byName, byIDs, vaultID, itemID} {
			t.Run(tt.name+"/"+ref, func(t *testing.T) {
				p := newProvider(t, f.env(nil))
				before := len(f.srv.Requests())
				res := p.Fetch(providers.WithGate(context.Background(), policy.Set{pol}.Gate), parse(t, ref))
				if tt.allowed {
					if res[0].Err != nil || string(res[0].Secret.Value.Reveal()) != f.password {
						t.Fatalf("%v; want the password", res[0].Err)
					}
					return
				}
				if providers.KindOf(res[0].Err) != providers.KindDenied || res[0].Secret.Value.Len() != 0 {
					t.Fatalf("%v; want a denial and no value", res[0].Err)
				}
				for _, r := range f.srv.Requests()[before:] {
					if strings.Contains(r, "/items/") {
						t.Errorf("the item was read before the decision: %s", r)
					}
				}
			})
		}
	}
}

// TestPlanIdentity: in the plan a vault or item written by its id is
// PlanName, which an allow accepts where it names it and a deny does not
// refuse (the request-time check decides on the name); patterns with ids
// are refused.
func TestPlanIdentity(t *testing.T) {
	id := strings.Repeat("a", 26)
	for ref, want := range map[string]string{
		"op://Prod/Database/password":            "op://prod/database/password",
		"op://" + id + "/Database/password":      "op://*/database/password",
		"op://Prod/" + id + "/Admin/password":    "op://prod/*/admin/password",
		"op://" + id + "/" + id + "/" + id:       "op://*/*/" + id,
		"op://" + strings.ToUpper(id) + "/db/pw": "op://*/db/pw",
	} {
		if got, _ := Identity(parse(t, ref)[0], providers.Env{}); got != want {
			t.Errorf("Identity(%s) = %s, want %s", ref, got, want)
		}
	}
	pol, err := policy.Parse("p.yaml", []byte("allow: [\"op://prod/database/*\", \"op://*/stripe/*\"]\ndeny: [\"op://prod/database/admin\", \"op://*/*/root\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{
		"op://*/database/password": true,  // the allow, if the vault is prod
		"op://prod/*/password":     true,  // the allow, if the item is database
		"op://*/database/admin":    true,  // the deny pins prod: decided later
		"op://*/*/root":            false, // denied whatever they are
		"op://~/database/password": false, // unknown at request time: no allow
		"op://prod/~/admin":        false, // unknown at request time: the deny holds
		"op://~/stripe/key":        true,  // any vault's stripe
		"op://%2A/database/pw":     false, // a name "*" is not the placeholder
	} {
		if ok, why := pol.AllowsID(id); ok != want {
			t.Errorf("%s: allowed %v (%s), want %v", id, ok, why, want)
		}
	}
	for _, bad := range []string{"op://" + id + "/**", "op://prod/" + id + "/*", "op://prod/db/f?attribute=otp"} {
		if _, err := policy.Parse("p.yaml", []byte("deny: [\""+bad+"\"]\n")); err == nil {
			t.Errorf("pattern %s accepted", bad)
		}
	}
	if got := canonName("A/B*~ c"); got != "a%2Fb%2A%7E c" {
		t.Errorf("canonName = %q", got)
	}
}

// TestServiceAccountIDsFailClosed: the SDK resolves ids itself, so an id
// reference is sent only when the policy allows it whatever it names.
func TestServiceAccountIDsFailClosed(t *testing.T) {
	id := strings.Repeat("b", 26)
	ref := "op://" + id + "/Database/password"
	f := &fakeSDK{results: map[string]sdkResult{ref: {Secret: "x"}, "op://Prod/Database/password": {Secret: "y"}}}
	p := saProvider(t, f)
	for _, tt := range []struct {
		policy string
		ref    string
		sent   bool
	}{
		{`allow: ["op://prod/**"]`, ref, false},
		{"allow: [\"op://**\"]\ndeny: [\"op://finance/**\"]", ref, false},
		{`allow: ["op://*/database/*"]`, ref, true},
		{`allow: ["op://prod/**"]`, "op://Prod/Database/password", true},
	} {
		pol, err := policy.Parse("p.yaml", []byte(tt.policy+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		f.calls = nil
		res := p.Fetch(providers.WithGate(context.Background(), policy.Set{pol}.Gate), parse(t, tt.ref))
		if sent := len(f.calls) > 0; sent != tt.sent {
			t.Errorf("%s under %q: sent %v, want %v (%v)", tt.ref, tt.policy, sent, tt.sent, res[0].Err)
		}
		if !tt.sent && (providers.KindOf(res[0].Err) != providers.KindDenied || !strings.Contains(res[0].Err.Error(), "service account")) {
			t.Errorf("%s under %q: %v, want a denial that says why", tt.ref, tt.policy, res[0].Err)
		}
	}
}
