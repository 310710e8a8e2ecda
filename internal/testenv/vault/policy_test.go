package vaulttest

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretbroker/secretbroker/providers"
	sbvault "github.com/secretbroker/secretbroker/providers/vault"
)

// TestPolicy: the generated policy, applied back to Vault, is sufficient
// (every reference resolves) and minimal (a sibling is denied, and the
// audit finds nothing broader); the audit flags broader tokens.
func TestPolicy(t *testing.T) {
	c := seeded(t)
	spec := []string{
		"vault://secret/app/db#password",
		"vault://secret/app/db?version=1#username",
		"vault://secret/app/api#key",
		"vault://kv1/app/config#token",
		"vault://leased/app#password",
	}
	rs := refs(t, spec...)
	ctx := context.Background()

	pl, err := sbvault.PlanFor(ctx, rs, sbvault.Config{}, c.Root)
	if err != nil {
		t.Fatal(err)
	}
	hcl := pl.HCL()
	t.Logf("generated policy:\n%s", hcl)
	for _, want := range []string{`path "secret/data/app/db"`, `path "secret/data/app/api"`, `path "kv1/app/config"`, `path "leased/app"`, `path "sys/leases/renew"`} {
		if !strings.Contains(hcl, want) {
			t.Errorf("policy lacks %s", want)
		}
	}
	if strings.Contains(hcl, "*") || strings.Contains(hcl, "metadata") {
		t.Error("policy holds a wildcard or a metadata path the spec did not ask for")
	}
	if len(pl.Notes) != 0 {
		t.Errorf("notes with a live Vault: %v", pl.Notes)
	}

	c.Policy(t, "generated", hcl)
	tok := c.Token(t, "default", "generated")
	p, _ := open(t, c, nil, map[string]string{"VAULT_TOKEN": tok})
	for i, r := range fetch(t, p, spec...) {
		if r.Err != nil {
			t.Errorf("%s with the generated policy: %v", spec[i], r.Err)
		}
	}
	wantErr(t, fetch(t, p, "vault://secret/app/other#key")[0], providers.KindDenied)
	wantErr(t, fetch(t, p, "vault://kv1/app/else#x")[0], providers.KindDenied)

	audit := func(token string) (bool, string) {
		cl, err := c.Root.Clone()
		if err != nil {
			t.Fatal(err)
		}
		cl.SetToken(token)
		fs, err := sbvault.Audit(ctx, cl, pl)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		broader := sbvault.WriteFindings(&b, fs, len(pl.Needs))
		return broader, b.String()
	}
	if broader, out := audit(tok); broader {
		t.Errorf("audit of the generated policy says broader:\n%s", out)
	}

	c.Policy(t, "wild", `path "secret/data/app/*" { capabilities = ["read"] }
path "kv1/app/config" { capabilities = ["read", "update"] }
path "leased/app" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }`)
	broader, out := audit(c.Token(t, "default", "wild"))
	t.Logf("audit of a wildcard token:\n%s", out)
	if !broader || !strings.Contains(out, "secret/data/app/"+sbvault.ProbeName) || !strings.Contains(out, "beyond read on kv1/app/config: update") {
		t.Errorf("audit missed the wildcard or the update capability:\n%s", out)
	}
	broader, out = audit(c.RootToken)
	if !broader || !strings.Contains(out, "root policy") {
		t.Errorf("audit of the root token:\n%s", out)
	}
	broader, out = audit(c.Token(t, "default"))
	if broader || !strings.Contains(out, "missing: the token cannot read secret/data/app/db") {
		t.Errorf("audit of a token that lacks access:\n%s", out)
	}

	// Without a Vault: kv hints, else KV v2 assumed with a note.
	off, err := sbvault.PlanFor(ctx, rs, sbvault.Config{KV: map[string]int{"kv1": 1, "leased": 0}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if off.HCL() != hcl {
		t.Errorf("policy from hints differs from the one learnt from Vault:\n%s", off.HCL())
	}
	if len(off.Notes) != 1 || !strings.Contains(off.Notes[0], "assumed secret/ is a KV v2 mount") {
		t.Errorf("notes: %q", off.Notes)
	}
}

var _ = api.DefaultConfig
