package onepassword

import (
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/providers"
)

// The examples are the ones on 1Password's "Secret reference syntax" page.
func TestParseOnePasswordRef(t *testing.T) {
	tests := []struct {
		in                          string
		vault, item, section, field string
		canonical                   string
	}{
		{"op://Management/PagerDuty/Admin/email", "Management", "PagerDuty", "Admin", "email", "op://management/pagerduty/admin/email"},
		{"op://dev/Stripe/publishable-key", "dev", "Stripe", "", "publishable-key", "op://dev/stripe/publishable-key"},
		{"op://development/aws/Access Keys/access_key_id", "development", "aws", "Access Keys", "access_key_id", "op://development/aws/access keys/access_key_id"},
		{"op://development/GitHub/Security/one-time password?attribute=otp", "development", "GitHub", "Security", "one-time password", "op://development/github/security/one-time password?attribute=otp"},
		{"op://Personal/aws/access credentials/username?attribute=type", "Personal", "aws", "access credentials", "username", "op://personal/aws/access credentials/username?attribute=type"},
		{"op://app-infra/ssh/key.pem?attribute=name", "app-infra", "ssh", "", "key.pem", "op://app-infra/ssh/key.pem?attribute=name"},
		{"op://app-infra/ssh/key.pem?attribute=content", "app-infra", "ssh", "", "key.pem", "op://app-infra/ssh/key.pem?attribute=content"},
		{"op://Private/ssh keys/ssh key/private key?ssh-format=openssh", "Private", "ssh keys", "ssh key", "private key", "op://private/ssh keys/ssh key/private key?ssh-format=openssh"},
		{"op://prod/yj3jfj2vzsbiwqabprflnl27lm/password", "prod", "yj3jfj2vzsbiwqabprflnl27lm", "", "password", "op://prod/yj3jfj2vzsbiwqabprflnl27lm/password"},
		// case-insensitive throughout, parameters included
		{"op://Dev/Stripe/key?attribute=OTP", "Dev", "Stripe", "", "key", "op://dev/stripe/key?attribute=otp"},
		{"op://Dev/Stripe/key?ssh-format=OpenSSH&attribute=value", "Dev", "Stripe", "", "key", "op://dev/stripe/key?attribute=value&ssh-format=openssh"},
		{"op://v_1/i.2/s-3/f 4", "v_1", "i.2", "s-3", "f 4", "op://v_1/i.2/s-3/f 4"},
	}
	for _, tt := range tests {
		r, err := providers.ParseRef(tt.in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tt.in, err)
			continue
		}
		v, i, s, f := Parts(r)
		if v != tt.vault || i != tt.item || s != tt.section || f != tt.field {
			t.Errorf("Parts(%q) = %q %q %q %q, want %q %q %q %q", tt.in, v, i, s, f, tt.vault, tt.item, tt.section, tt.field)
		}
		if got := r.Canonical(); got != tt.canonical {
			t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.canonical)
		}
	}
}

func TestParseOnePasswordRefErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"op://vault/item", "got 2 part(s)"},
		{"op://v/i/s/f/extra", "got 5 part(s)"},
		{"op:///vault/item/field", "vault name is missing"},
		{"op://vault//field", "empty path segment"},
		{"op://vault/item/field#k", "no #KEY"},
		{"op://vault/it$em/field", "by its id"},
		{"op://$APP_ENV/mysql/database", "op run"},
		{"op://vault/a%2Fb/field", "escape"},
		{"op://vault/a%20b/field", "escape"},
		{"op://vault/caf\u00e9/field", "non-ASCII"},
		{"op://vault/tab\there/field", "control character in path"},
		{"op://vault/ item/field", "leading or trailing spaces"},
		{"op://vault/item/field ", "leading or trailing spaces"},
		{"op://vault/item/field?attribute=color", "unknown attribute"},
		// not in 1Password's documented lists
		{"op://vault/item/field?attribute=totp", "unknown attribute"},
		{"op://vault/item/field?attribute=label", "unknown attribute"},
		{"op://vault/item/field?attr=otp", "unknown parameter"},
		{"op://vault/item/field?ssh-format=pem", "unknown ssh-format"},
		{"op://vault/item/key?ssh-format=openssh&attribute=otp", "does not combine"},
		{"op://vault/item/field?attribute=otp&attribute=otp", "given twice"},
	}
	for _, tt := range tests {
		_, err := providers.ParseRef(tt.in)
		if err == nil {
			t.Errorf("ParseRef(%q) succeeded, want error containing %q", tt.in, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRef(%q) = %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

// FuzzParseOnePasswordRef checks that whatever ParseRef accepts as op:// is
// exactly 1Password's syntax, and that the canonical form is a fixed point.
func FuzzParseOnePasswordRef(f *testing.F) {
	for _, s := range []string{
		"op://Management/PagerDuty/Admin/email",
		"op://dev/Stripe/publishable-key",
		"op://development/GitHub/Security/one-time password?attribute=otp",
		"op://Private/ssh keys/ssh key/private key?ssh-format=openssh",
		"op://v/i/f%2Fx", "op://v/i/f?attribute=Value&ssh-format=OPENSSH", "op://a/b/c/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := providers.ParseRef("op://" + strings.TrimPrefix(s, "op://"))
		if err != nil {
			return
		}
		v, i, sec, fld := Parts(r)
		parts := []string{v, i, fld}
		if strings.Count(r.Path, "/") == 3 {
			parts = append(parts, sec)
		}
		for _, p := range parts {
			if p == "" || strings.TrimSpace(p) != p {
				t.Fatalf("%q: accepted empty or padded part %q", s, p)
			}
			for _, c := range []byte(p) {
				if !(c == '-' || c == '_' || c == '.' || c == ' ' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
					t.Fatalf("%q: accepted %q in part %q", s, c, p)
				}
			}
		}
		c := r.Canonical()
		if c != strings.ToLower(c) {
			t.Fatalf("canonical %q is not lower-case", c)
		}
		r2, err := providers.ParseRef(c)
		if err != nil || r2.Canonical() != c {
			t.Fatalf("canonical %q of %q does not reparse to itself: %v", c, s, err)
		}
	})
}
