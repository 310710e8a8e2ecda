package policy

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/secretbroker/secretbroker/internal/posixacl"

	"github.com/secretbroker/secretbroker/providers"
)

func ref(t *testing.T, s string) providers.Ref {
	t.Helper()
	r, err := providers.ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAllows(t *testing.T) {
	p, err := Parse("test", []byte(`
allow: ["vault://secret/app/*", "aws-sm://prod/**", "op://Prod/GitHub/*"]
deny:  ["vault://secret/app/admin*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref  string
		want bool
	}{
		{"vault://secret/app/db#password", true},
		{"vault://secret/app/db?version=2#password", true},
		{"vault://secret/app/admin#x", false},
		{"vault://secret/app/administrator", false},
		{"vault://secret/app/db/nested", false}, // * is one segment
		{"vault://secret/other", false},
		{"aws-sm://prod/a/b/c#k", true},
		{"aws-sm://prod", false},
		{"aws-sm://production/x", false},
		{"op://prod/github/token", true}, // 1Password names are case-insensitive
		{"file://x.yaml#k", false},
	}
	for _, tt := range tests {
		if got, why := p.Allows(ref(t, tt.ref)); got != tt.want {
			t.Errorf("Allows(%s) = %v (%s), want %v", tt.ref, got, why, tt.want)
		}
	}
}

func TestCheckReportsEverything(t *testing.T) {
	p, _ := Parse("p.yaml", []byte("allow: [\"vault://secret/app/*\"]\ndirs: [/run/secretbroker]\n"))
	plan := Plan{
		Items: []Item{
			{Name: "a", Ref: ref(t, "vault://secret/app/a")},
			{Name: "b", Ref: ref(t, "vault://secret/other/b")},
			{Name: "c", Ref: ref(t, "vault://secret/app/c"), Exposed: true},
		},
		Dir:       "/tmp/x",
		AllowDisk: true,
	}
	err := Set{p}.Check(plan)
	var d Denied
	if !errors.As(err, &d) || len(d) != 4 {
		t.Fatalf("got %v, want 4 violations (b, c exposed, allow-disk, dir)", err)
	}
	for _, want := range []string{"secret b", "allow_env_exposure", "--allow-disk", "dir /tmp/x"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestEmptyAllowDeniesAll(t *testing.T) {
	p, _ := Parse("p", []byte("allow_disk: true\n"))
	if ok, why := p.Allows(ref(t, "vault://secret/x")); ok || !strings.Contains(why, "allows nothing") {
		t.Fatalf("got %v %q", ok, why)
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{
		"alow: [x]",                         // misspelt key
		`allow: ["s3://bucket/*"]`,          // unknown scheme
		`allow: ["vault://secret/app#key"]`, // per key
		"dirs: [relative]",
		"max_secret_bytes: -1",
	} {
		if _, err := Parse("p", []byte(bad)); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func TestSize(t *testing.T) {
	p, _ := Parse("p", []byte("max_secret_bytes: 4\n"))
	if v := (Set{p}).CheckSize("s", 5); v == nil {
		t.Fatal("5 bytes over a 4-byte limit passed")
	}
	if v := (Set{p}).CheckSize("s", 4); v != nil {
		t.Fatal(v)
	}
}

func TestGuardrail(t *testing.T) {
	dir := t.TempDir()
	old := GuardrailPath
	GuardrailPath = filepath.Join(dir, "policy.yaml")
	t.Cleanup(func() { GuardrailPath = old })

	set, _, err := LoadSet("")
	if err != nil || len(set) != 0 {
		t.Fatalf("no guardrail: %v %v", set, err)
	}
	os.WriteFile(GuardrailPath, []byte("allow: [\"vault://secret/**\"]\n"), 0o644)
	own := filepath.Join(dir, "own.yaml")
	os.WriteFile(own, []byte("allow: [\"vault://**\", \"aws-sm://**\"]\n"), 0o644)
	if os.Getuid() != 0 {
		t.Skip("the guardrail must be root-owned; run as root to test it")
	}
	set, _, err = LoadSet(own)
	if err != nil || len(set) != 2 {
		t.Fatalf("got %d policies, %v", len(set), err)
	}
	// The workload's own policy allows aws-sm, the guardrail does not: denied.
	if err := set.Check(Plan{Items: []Item{{Name: "x", Ref: ref(t, "aws-sm://prod/x")}}}); err == nil {
		t.Fatal("the guardrail did not apply")
	}
	os.Chmod(GuardrailPath, 0o666)
	if _, _, err := LoadSet(own); err == nil || !strings.Contains(err.Error(), "writable") {
		t.Fatalf("world-writable guardrail accepted: %v", err)
	}
	os.Chmod(GuardrailPath, 0o644)
	os.Chown(GuardrailPath, 1000, 1000)
	set, notes, err := LoadSet(own)
	if err != nil || len(set) != 1 || len(notes) != 1 {
		t.Fatalf("non-root guardrail: %d policies, notes %v, %v", len(set), notes, err)
	}
}

// TestGuardrailRefused: a guardrail that exists but that someone other
// than root could have written, or that is not a plain small file, is a
// GuardrailError (77), never ignored and never blocking.
// setACL sets path's access ACL from getfacl-style entries, as setfacl
// would, without needing the acl package.
func setACL(path string, entries ...string) {
	var a posixacl.ACL
	for _, s := range entries {
		e, err := posixacl.ParseEntry(s)
		if err != nil {
			panic(err)
		}
		a = append(a, e)
	}
	if err := unix.Setxattr(path, posixacl.Name, a.Encode(), 0); err != nil {
		panic(err)
	}
}

func TestGuardrailRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("the guardrail must be root-owned; run as root to test it")
	}
	good := []byte("allow: [\"file://**\"]\n")
	tests := []struct {
		name  string
		setup func(dir, path string)
		want  string // "" = accepted
	}{
		{"plain", func(dir, path string) { os.WriteFile(path, good, 0o644) }, ""},
		{"fifo", func(dir, path string) { syscall.Mkfifo(path, 0o644) }, "not a regular file"},
		{"directory", func(dir, path string) { os.Mkdir(path, 0o755) }, "not a regular file"},
		{"dir writable", func(dir, path string) { os.WriteFile(path, good, 0o644); os.Chmod(dir, 0o777) }, "is writable by group or others"},
		{"dir sticky, file root's", func(dir, path string) { os.WriteFile(path, good, 0o644); os.Chmod(dir, 0o777|os.ModeSticky) }, ""},
		{"dir another user's", func(dir, path string) { os.WriteFile(path, good, 0o644); os.Chown(dir, 1000, 1000) }, "owned by uid 1000"},
		{"symlink into a writable dir", func(dir, path string) {
			os.Mkdir(filepath.Join(dir, "w"), 0o777)
			os.Chmod(filepath.Join(dir, "w"), 0o777) // past the umask
			os.WriteFile(filepath.Join(dir, "w", "p.yaml"), good, 0o644)
			os.Symlink("w/p.yaml", path)
		}, "writable by group or others"},
		{"symlink to a root-only file", func(dir, path string) {
			os.Mkdir(filepath.Join(dir, "..data"), 0o755)
			os.WriteFile(filepath.Join(dir, "..data", "p.yaml"), good, 0o644)
			os.Symlink("..data/p.yaml", path)
		}, ""},
		{"two documents", func(dir, path string) { os.WriteFile(path, []byte("allow: []\n---\n"), 0o644) }, "more than one YAML document"},
		// POSIX ACLs: an entry that lets another user write the file or a
		// directory on the way is named; one the mask disables is not.
		{"file ACL lets a user write", func(dir, path string) {
			os.WriteFile(path, good, 0o644)
			setACL(path, "user::rw-", "user:1000:rw-", "group::r--", "mask::rw-", "other::r--")
		}, "its ACL entry user:1000:rw- lets someone other than root write it"},
		{"file ACL masked", func(dir, path string) {
			os.WriteFile(path, good, 0o644)
			setACL(path, "user::rw-", "user:1000:rw-", "group::r--", "mask::r--", "other::r--")
		}, ""},
		{"dir ACL lets a group write", func(dir, path string) {
			os.WriteFile(path, good, 0o644)
			setACL(dir, "user::rwx", "group::r-x", "group:1000:rwx", "mask::rwx", "other::r-x")
		}, "its directory .*/etc has the ACL entry group:1000:rwx"},
		{"ACL on a directory higher up", func(dir, path string) {
			os.WriteFile(path, good, 0o644)
			setACL(filepath.Dir(dir), "user::rwx", "user:1000:rwx", "group::---", "mask::rwx", "other::---")
		}, "has the ACL entry user:1000:rwx"},
		// Every symlink on the way is judged where it sits, not only the
		// first and the last: here the middle one is in a writable directory.
		{"symlink hop through a writable dir", func(dir, path string) {
			os.Mkdir(filepath.Join(dir, "..data"), 0o755)
			os.WriteFile(filepath.Join(dir, "..data", "p.yaml"), good, 0o644)
			os.Mkdir(filepath.Join(dir, "w"), 0o777)
			os.Chmod(filepath.Join(dir, "w"), 0o777)
			os.Symlink("../..data/p.yaml", filepath.Join(dir, "w", "hop"))
			os.Symlink("w/hop", path)
		}, "its directory .*/etc/w is writable by group or others"},
		{"symlink to nowhere", func(dir, path string) { os.Symlink("missing.yaml", path) }, "a symlink on the way leads to .*missing.yaml, which does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "etc")
			os.Mkdir(dir, 0o755)
			old := GuardrailPath
			GuardrailPath = filepath.Join(dir, "policy.yaml")
			t.Cleanup(func() { GuardrailPath = old })
			tt.setup(dir, GuardrailPath)
			set, _, err := LoadSet("")
			if tt.want == "" {
				if err != nil || len(set) != 1 {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ge *GuardrailError
			if !errors.As(err, &ge) || !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Fatalf("got %v, want a GuardrailError with %q", err, tt.want)
			}
		})
	}
}
