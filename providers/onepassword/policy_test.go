package onepassword

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/providers"
)

func TestWritePolicy(t *testing.T) {
	// A reference of another scheme, which this package cannot parse.
	other := providers.Ref{Raw: "other://secret/a", Scheme: "other", Path: "secret/a"}
	refs := append(parse(t, "op://Prod/Database/password", "op://prod/Stripe/key", "op://Staging/x/y"), other)
	var b bytes.Buffer
	if err := WritePolicy(&b, refs); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, w := range []string{`name: "Prod"`, `name: "Staging"`, "permissions: [read_items]", `--vault "Prod:read_items" --vault "Staging:read_items"`, `--vault "Prod,r" --vault "Staging,r"`} {
		if !strings.Contains(out, w) {
			t.Errorf("policy lacks %q:\n%s", w, out)
		}
	}
	if strings.Count(out, "- name:") != 2 {
		t.Errorf("want two vaults (names are case-insensitive):\n%s", out)
	}
	b.Reset()
	WritePolicy(&b, []providers.Ref{other})
	if !strings.Contains(b.String(), "needs no 1Password access") {
		t.Errorf("no op refs: %s", b.String())
	}
}

func TestAuditConnect(t *testing.T) {
	f := newFixture(t)
	refs := parse(t, "op://Prod/Database/password", "op://Staging/x/y")

	// The fixture's token sees every vault: broader (Finance).
	rep, err := Audit(context.Background(), f.env(nil), refs)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Broader() || strings.Join(rep.Extra, ",") != "Finance" {
		t.Errorf("full token: extra %q, want Finance", rep.Extra)
	}
	var b bytes.Buffer
	WriteAudit(&b, rep)
	if !strings.Contains(b.String(), `broader than needed: it can also read "Finance"`) {
		t.Errorf("report:\n%s", b.String())
	}

	// A token scoped to exactly the spec's vaults is not broader.
	exact := fakeValue(t, "exact-token")
	f.srv.AddToken(exact, f.prod.ID, f.staging.ID)
	rep, err = Audit(context.Background(), f.env(map[string]string{EnvConnectToken: exact}), refs)
	if err != nil || rep.Broader() || len(rep.Missing) != 0 {
		t.Errorf("exact token: %+v %v", rep, err)
	}

	// One that lacks a vault is reported as missing it.
	narrow := fakeValue(t, "narrow-token")
	f.srv.AddToken(narrow, f.prod.ID)
	rep, _ = Audit(context.Background(), f.env(map[string]string{EnvConnectToken: narrow}), refs)
	if rep.Broader() || strings.Join(rep.Missing, ",") != "Staging" {
		t.Errorf("narrow token: %+v", rep)
	}

	// A bad token is an error, denied.
	_, err = Audit(context.Background(), f.env(map[string]string{EnvConnectToken: "fake-bad"}), refs)
	if providers.KindOf(err) != providers.KindDenied {
		t.Errorf("bad token: %v", err)
	}
	// No credential at all: a configuration error.
	_, err = Audit(context.Background(), providers.Env{Getenv: func(string) string { return "" }}, refs)
	if providers.KindOf(err) != providers.KindConfig {
		t.Errorf("no credential: %v", err)
	}
}

func TestAuditServiceAccount(t *testing.T) {
	f := &fakeSDK{vaults: []named{{"v1", "Prod"}, {"v2", "Private"}}}
	saProvider(t, f) // installs the fake
	rep, err := Audit(context.Background(), providers.Env{Getenv: func(k string) string {
		return map[string]string{EnvServiceAccountToken: "fake-sa"}[k]
	}}, parse(t, "op://v1/Database/password"))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Broader() || strings.Join(rep.Extra, ",") != "Private" || rep.Mode != ModeServiceAccount {
		t.Errorf("%+v", rep)
	}
}
