package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// Patterns match canonical identities: file:// patterns are absolute real
// paths (relative ones beside the policy file, a leading ** from /), and
// vault:// patterns lose a leading "/".
func TestAllowsID(t *testing.T) {
	dir := t.TempDir()
	real, _ := filepath.EvalSymlinks(dir)
	os.Mkdir(filepath.Join(dir, "real"), 0o755)
	os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "via"))
	src := filepath.Join(dir, "policy.yaml")
	p, err := Parse(src, []byte(`allow: ["file://*.yaml", "file://**/shared/*", "file://via/*", "vault:///secret/app/*"]
deny: ["file://admin*", "vault://secret/app/admin"]
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"file://" + real + "/s.yaml", true},
		{"file://" + real + "/admin.yaml", false},
		{"file://" + real + "/sub/s.yaml", false},
		{"file:///elsewhere/s.yaml", false},
		{"file:///any/where/shared/x", true},
		{"file://" + real + "/real/x", true}, // the pattern's symlink resolved
		{"file://" + real + "/via/x", false}, // an identity is never a symlink path
		{"vault://secret/app/db", true},
		{"vault://secret/app/admin", false},
	} {
		if ok, why := p.AllowsID(tc.id); ok != tc.want {
			t.Errorf("AllowsID(%s) = %v (%s), want %v", tc.id, ok, why, tc.want)
		}
	}
	g := &Policy{Source: "guard", Guardrail: true}
	g.allow = p.allow
	g.Allow = p.Allow
	g.deny, g.Deny = p.deny, p.Deny
	set := Set{g, p}
	if err := set.Gate("vault://secret/app/admin"); err == nil {
		t.Error("Set.Gate let a denied identity through")
	}
	if v := set.CheckFile("templates[0] source", "file://"+real+"/admin.yaml"); len(v) != 1 || v[0].Policy != "guard" {
		t.Errorf("CheckFile = %v, want one guardrail violation", v)
	}
}
