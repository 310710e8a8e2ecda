package allow_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/lint/allow"
	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
	"github.com/secretbroker/secretbroker/lint/rules"
	"github.com/secretbroker/secretbroker/lint/scan"
)

func TestBaseline(t *testing.T) {
	val := testsecret.GitHubPAT()
	f := scan.Finding{RuleID: "github-pat", Path: "app/x", Secret: rules.Secret(val)}
	b, err := allow.NewBaseline()
	if err != nil {
		t.Fatal(err)
	}
	b.Add(f)
	p := filepath.Join(t.TempDir(), "b.json")
	if err := b.Save(p); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	if strings.Contains(string(data), val) {
		t.Fatal("baseline holds the value")
	}
	b2, err := allow.LoadBaseline(p)
	if err != nil {
		t.Fatal(err)
	}
	rotated := f
	rotated.Secret = rules.Secret(testsecret.GitHubPAT())
	moved := f
	moved.Path = "app/y"
	for _, tt := range []struct {
		name string
		f    scan.Finding
		want bool
	}{{"same", f, true}, {"rotated value", rotated, false}, {"other path", moved, false}} {
		if got := b2.Has(tt.f); got != tt.want {
			t.Errorf("%s: Has = %v", tt.name, got)
		}
	}
	// Another baseline (another salt) gives another fingerprint.
	b3, _ := allow.NewBaseline()
	if b3.Fingerprint(f) == b2.Fingerprint(f) {
		t.Fatal("fingerprint does not depend on the salt")
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.yaml")
		_ = os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	_, err := allow.LoadConfig(write("allow:\n  - rules: [jwt]\n  - reason: x\n"))
	if err == nil || !strings.Contains(err.Error(), "allow[0]: reason is required") || !strings.Contains(err.Error(), "allow[1]: give paths") {
		t.Fatalf("want both problems, got %v", err)
	}
	c, err := allow.LoadConfig(write(`allow:
  - paths: ["usr/share/doc/**"]
    reason: vendor docs
  - rules: [jwt]
    reason: test tokens
    expires: 2030-01-01
  - fingerprints: [abc]
    reason: reviewed
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2029, 6, 1, 0, 0, 0, 0, time.UTC)
	later := time.Date(2030, 1, 2, 1, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		f    scan.Finding
		now  time.Time
		want string
	}{
		{scan.Finding{RuleID: "github-pat", Path: "usr/share/doc/x/README"}, now, "vendor docs"},
		{scan.Finding{RuleID: "github-pat", Path: "usr/share/x"}, now, ""},
		{scan.Finding{RuleID: "jwt", Path: "a"}, now, "test tokens"},
		{scan.Finding{RuleID: "jwt", Path: "a"}, later, ""},
		{scan.Finding{RuleID: "x", Fingerprint: "abc"}, now, "reviewed"},
	} {
		if got := c.Allowed(tt.f, tt.now, nil); got != tt.want {
			t.Errorf("%s %s: got %q want %q", tt.f.RuleID, tt.f.Path, got, tt.want)
		}
	}
}
