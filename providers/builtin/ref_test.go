//go:build !novault && !noawssm && !noonepassword

package builtin_test

import (
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/providers"
)

// The reference grammar of the built-in schemes: the common part in
// providers.ParseRef and each scheme's part in its descriptor's Syntax.

func TestParseRef(t *testing.T) {
	tests := []struct {
		in, canonical, target string
	}{
		{"vault://secret/app/db#password", "vault://secret/app/db#password", "vault://secret/app/db"},
		{"vault://secret/app/db?version=3#password", "vault://secret/app/db?version=3#password", "vault://secret/app/db"},
		{"vault://secret/app/db/", "vault://secret/app/db", "vault://secret/app/db"},
		{"aws-sm://prod/stripe?version-stage=AWSPREVIOUS&region=eu-west-1#key", "aws-sm://prod/stripe?region=eu-west-1&version-stage=AWSPREVIOUS#key", "aws-sm://prod/stripe"},
		{"aws-sm://arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf#/a/b", "aws-sm://arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf#/a/b", "aws-sm://arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"},
		{"op://Prod/GitHub/token", "op://prod/github/token", "op://prod/github/token"},
		{"op://Prod/GitHub/Security/one-time password?attribute=otp", "op://prod/github/security/one-time password?attribute=otp", "op://prod/github/security/one-time password"},
		{"file:///etc/app.yaml#db", "file:///etc/app.yaml#db", "file:///etc/app.yaml"},
		{"file://dev.env#API_KEY", "file://dev.env#API_KEY", "file://dev.env"},
		{"file://a%23b.json#k%3Fx", "file://a%23b.json#k%3Fx", "file://a%23b.json"},
		// Vault requests the path without a leading "/": so does the policy.
		{"vault:///secret/app/admin#k", "vault://secret/app/admin#k", "vault://secret/app/admin"},
		{"vault://%2Fsecret/app/admin", "vault://secret/app/admin", "vault://secret/app/admin"},
		{"vault://secret%2Fapp/admin", "vault://secret/app/admin", "vault://secret/app/admin"},
	}
	for _, tt := range tests {
		r, err := providers.ParseRef(tt.in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tt.in, err)
			continue
		}
		if got := r.Canonical(); got != tt.canonical {
			t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.canonical)
		}
		if got := r.Target(); got != tt.target {
			t.Errorf("Target(%q) = %q, want %q", tt.in, got, tt.target)
		}
		// The canonical form is a fixed point.
		r2, err := providers.ParseRef(r.Canonical())
		if err != nil || r2.Canonical() != r.Canonical() {
			t.Errorf("canonical %q does not reparse to itself: %v", r.Canonical(), err)
		}
	}
}

func TestParseRefErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"vault://", "empty path"},
		{"vault://#x", "empty path"},
		{"vault://secret/app#password?version=2", "put ?params before #key"},
		{"vault://secret/app?versoin=2", `unknown parameter "versoin"`},
		{"vault://secret/../admin", `".." path segment`},
		{"vault://secret/./admin", `"." path segment`},
		{"vault://secret//admin", `empty path segment`},
		// Decoded before the check: an escaped dot segment is a dot segment.
		{"vault://secret/app/%2e%2e/admin", `".." path segment not allowed (at byte 19)`},
		{"vault://secret/app/%2E%2e/admin", `".." path segment not allowed (at byte 19)`},
		{"vault://secret/app/.%2e/admin", `".." path segment not allowed (at byte 19)`},
		{"vault://secret/app/%2e/admin", `"." path segment not allowed (at byte 19)`},
		{"vault://secret/app%2f%2fadmin", `empty path segment ("//") (at byte 21)`},
		{"vault://secret/app%2F..%2Fadmin", `".." path segment not allowed (at byte 21)`},
		{"file://%2e%2e/etc/passwd", `".." path segment not allowed (at byte 7)`},
		{"aws-sm://prod/%2E%2E/admin", `".." path segment not allowed (at byte 14)`},
		{"vault://secret/a%00b", `control character in path (at byte 16)`},
		{"vault://secret/a%0ab", `control character in path (at byte 16)`},
		{"vault:///", "empty path"},
		{"vault://%2F", "empty path"},
		{"vault://secret/app?version=x", "positive integer"},
		{"vault://secret/app?version=1&version=2", "given twice"},
		{"vault://secret/app#", "empty key"},
		{"vault://secret/app#/a~2", "JSON pointer"},
		{"vault://secret/a%zz", "bad escape"},
		{"vault://secret/a%2", "incomplete"},
		{"s3://bucket/key", `unknown scheme "s3"`},
		{"no-scheme", "want SCHEME://PATH"},
		{"op://vault/item", "VAULT/ITEM"},
		{"op://vault/item/field#k", "no #KEY"},
		{"op://vault/it$em/field", "by its id"},
		{"op://vault/item/field?attribute=color", "unknown attribute"},
		{"file://x.yaml?version=1", "unknown parameter"},
	}
	for _, tt := range tests {
		_, err := providers.ParseRef(tt.in)
		if err == nil {
			t.Errorf("ParseRef(%q) succeeded, want error containing %q", tt.in, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.in) {
			t.Errorf("ParseRef(%q) = %q, want it to quote the reference and contain %q", tt.in, err, tt.want)
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"vault://secret/app#k", "aws-sm://a?region=x#/p", "op://a/b/c/d?attribute=otp", "file:///x.json#%23", "vault://a/../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := providers.ParseRef(s)
		if err != nil {
			return
		}
		c := r.Canonical()
		r2, err := providers.ParseRef(c)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", c, s, err)
		}
		if r2.Canonical() != c {
			t.Fatalf("canonical not stable: %q -> %q", c, r2.Canonical())
		}
	})
}
