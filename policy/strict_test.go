package policy

import (
	"errors"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/secretbroker/secretbroker/identity"
)

// TestStrict: every construct whose effect could be misread is refused,
// naming the rule and the line, never a Go type.
func TestStrict(t *testing.T) {
	tests := []struct {
		name, in, want string // want "" = accepted
	}{
		{"empty", "", ""},
		{"comment only", "# nothing\n", ""},
		{"null root", "~\n", ""},
		{"plain", "allow: [\"file://**\"]\ndeny: []\nallow_disk: false\nmax_secret_bytes: 4096\nrun_as_non_root: true\nrequire_no_new_privileges: true\n", ""},
		{"null list", "allow:\n", ""},
		{"two documents", "allow: []\n---\nallow: [\"file://**\"]\n", "line 2: more than one YAML document"},
		{"two documents, second empty", "allow: []\n---\n", "more than one YAML document"},
		{"document end marker", "allow: []\n...\n---\ndeny: []\n", "more than one YAML document"},
		{"duplicate key", "deny: [\"file://a\"]\ndeny: []\n", "line 2: key \"deny\" appears twice (first at line 1)"},
		{"duplicate quoted key", "deny: [\"file://a\"]\n\"deny\": []\n", "appears twice"},
		{"anchor", "allow: &x [\"file://**\"]\n", "line 1: anchor &x"},
		{"alias", "allow: &x [\"file://**\"]\ndeny: *x\n", "anchor &x"},
		{"merge key", "<<: {allow_disk: true}\n", "merge key"},
		{"tag", "allow_disk: !!bool true\n", "line 1: tag !!bool"},
		{"custom tag", "allow: !x [\"file://**\"]\n", "tag !x"},
		{"sequence root", "- allow\n", "line 1: the file must be a mapping of policy keys (allow:, deny:, ...), not a list"},
		{"scalar root", "allow\n", "not a string"},
		{"unknown key", "alow: []\n", "line 1: unknown key \"alow\"; did you mean \"allow\"?"},
		{"unknown key far", "colour: red\n", "unknown key \"colour\" (known: "},
		{"yes", "allow_disk: yes\n", "allow_disk: want true or false, got \"yes\""},
		{"on", "allow_env_exposure: on\n", "want true or false"},
		{"True", "allow_disk: True\n", "want true or false"},
		{"bool as string", "allow_disk: \"true\"\n", "want true or false"},
		{"octal", "max_secret_bytes: 010\n", "want a plain decimal number of bytes, got \"010\""},
		{"hex", "max_secret_bytes: 0x10\n", "got \"0x10\""},
		{"float", "max_secret_bytes: 1e3\n", "got \"1e3\""},
		{"negative", "max_secret_bytes: -1\n", "got \"-1\""},
		{"underscore", "max_secret_bytes: 1_000\n", "plain decimal"},
		{"list of numbers", "allow: [1]\n", "line 1: allow: each entry must be a string (quote it), got a number"},
		{"list as string", "allow: \"file://**\"\n", "allow: want a list of strings, got a string"},
		{"nested list", "deny: [[\"file://a\"]]\n", "each entry must be a string"},
		{"not yaml", "allow: [\n", "not valid YAML"},
		{"too big", "allow: []\n" + strings.Repeat("#", MaxBytes), "over the 65536-byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.in))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var se *StrictError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a StrictError with %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "policy.Policy") || strings.Contains(err.Error(), "yaml: unmarshal") {
				t.Errorf("message names a Go type: %q", err)
			}
		})
	}
}

// FuzzStrict: whatever the strict reader accepts decodes into one policy,
// and a second reading gives the same result (nothing depends on which of
// two readings wins); nothing panics.
func FuzzStrict(f *testing.F) {
	for _, s := range []string{
		"allow: [\"file://**\"]\n", "deny: []\ndeny: []\n", "a: &x 1\nb: *x\n", "<<: {}\n",
		"allow: []\n---\n", "max_secret_bytes: 10\nallow_disk: true\n", "- x\n", "allow_disk: !!bool true\n",
		"{allow: [\"vault://a/*\"], dirs: [/run]}\n", "allow: [\"file://a\", \"op://v/i/f\"]\nrun_as_non_root: true\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p1, err1 := Parse("f", b)
		p2, err2 := Parse("f", b)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("two readings differ: %v / %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if strings.Join(p1.Allow, "\x00") != strings.Join(p2.Allow, "\x00") || strings.Join(p1.Deny, "\x00") != strings.Join(p2.Deny, "\x00") ||
			p1.AllowDisk != p2.AllowDisk || p1.AllowEnvExposure != p2.AllowEnvExposure || p1.MaxSecretBytes != p2.MaxSecretBytes ||
			p1.RunAsNonRoot != p2.RunAsNonRoot || p1.RequireNoNewPrivileges != p2.RequireNoNewPrivileges {
			t.Fatalf("two readings differ")
		}
		if p1.MaxSecretBytes < 0 {
			t.Fatalf("negative max_secret_bytes accepted")
		}
		// Accepted means: every key known, no anchors: the loose reader
		// (plain yaml decode) must agree on allow and deny.
		var loose Policy
		if err := yaml.Unmarshal(b, &loose); err != nil {
			t.Fatalf("strict accepted what yaml refuses: %v", err)
		}
		if strings.Join(loose.Allow, "\x00") != strings.Join(p1.Allow, "\x00") || strings.Join(loose.Deny, "\x00") != strings.Join(p1.Deny, "\x00") || loose.AllowDisk != p1.AllowDisk {
			t.Fatalf("strict and loose readings differ")
		}
	})
}

// TestStartKeys: run_as_non_root and require_no_new_privileges judge how
// the app starts, and nothing when no app starts here (broker, check).
func TestStartKeys(t *testing.T) {
	p, err := Parse("g.yaml", []byte("run_as_non_root: true\nrequire_no_new_privileges: true\nallow: [\"file://**\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	id := func(uid, gid int, groups ...int) *identity.Identity {
		return &identity.Identity{UID: uid, GID: gid, Groups: groups, Spec: "x"}
	}
	tests := []struct {
		name  string
		start *Start
		want  int
	}{
		{"no app", nil, 0},
		{"user, nnp", &Start{RunAs: id(1000, 1000), NoNewPrivs: true}, 0},
		{"uid 0", &Start{RunAs: id(0, 1000), NoNewPrivs: true}, 1},
		{"gid 0", &Start{RunAs: id(1000, 0), NoNewPrivs: true}, 1},
		{"group 0", &Start{RunAs: id(1000, 1000, 5, 0), NoNewPrivs: true}, 1},
		{"no nnp", &Start{RunAs: id(1000, 1000)}, 1},
		{"root, no nnp", &Start{RunAs: id(0, 0)}, 2},
	}
	for _, tt := range tests {
		if got := p.Check(Plan{Start: tt.start}); len(got) != tt.want {
			t.Errorf("%s: %d violations %v, want %d", tt.name, len(got), got, tt.want)
		}
	}
	if os.Geteuid() == 0 {
		if got := p.Check(Plan{Start: &Start{NoNewPrivs: true}}); len(got) != 1 {
			t.Errorf("no --user as root: %v, want the uid 0 violation", got)
		}
	}
}
