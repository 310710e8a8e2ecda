package onepassword

import (
	"fmt"
	"slices"
	"strings"

	"github.com/secretbroker/secretbroker/providers"
)

// 1Password's secret reference syntax (developer.1password.com, "Secret
// reference syntax"):
//
//	op://VAULT/ITEM[/SECTION]/FIELD[?attribute=A][&ssh-format=openssh]
//
// Each part is a name or an id. A name may hold only ASCII letters and
// digits, "-", "_", "." and the space; a vault, item, section or field whose
// name holds anything else (a "/" included) is referred to by its id. A file
// attached to an item is referred to by its file name in place of FIELD.
// References are case-insensitive.

// FieldAttributes are the ?attribute= values 1Password documents
// for a field; FileAttributes those for a file attachment.
var (
	FieldAttributes = []string{"type", "value", "id", "purpose", "otp"}
	FileAttributes  = []string{"type", "content", "size", "id", "name"}
)

// attributes is the union of both lists, in documentation order.
var attributes = []string{"type", "value", "id", "purpose", "otp", "content", "size", "name"}

// Parts splits a parsed op:// reference into its parts. Section is
// "" when the reference has none.
func Parts(r providers.Ref) (vault, item, section, field string) {
	p := strings.Split(r.Path, "/")
	if len(p) == 4 {
		return p[0], p[1], p[2], p[3]
	}
	if len(p) == 3 {
		return p[0], p[1], "", p[2]
	}
	return "", "", "", ""
}

// checkRef enforces the syntax above on the path as written: %XX
// escapes are refused, since no allowed character needs one and a decoded
// "/" would change which part is which.
func checkRef(r *providers.Ref) *providers.RefError {
	const off = len(Scheme + "://")
	raw := r.Raw[off:]
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	raw = strings.TrimSuffix(raw, "/")
	if strings.HasPrefix(raw, "/") {
		return &providers.RefError{Pos: off, Msg: "want op://VAULT/ITEM[/SECTION]/FIELD; the vault name is missing"}
	}
	parts := strings.Split(raw, "/")
	if len(parts) < 3 || len(parts) > 4 {
		return &providers.RefError{Pos: -1, Msg: fmt.Sprintf("want op://VAULT/ITEM[/SECTION]/FIELD, got %d part(s)", len(parts)),
			Hint: "a name that holds \"/\" goes by its id"}
	}
	pos := off
	for _, p := range parts {
		if strings.TrimSpace(p) != p {
			return &providers.RefError{Pos: pos, Msg: fmt.Sprintf("name %q has leading or trailing spaces", p),
				Hint: "remove them, or refer to it by its id"}
		}
		for i := 0; i < len(p); i++ {
			c := p[i]
			ok := c == '-' || c == '_' || c == '.' || c == ' ' ||
				(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
			if ok {
				continue
			}
			e := &providers.RefError{Pos: pos + i, Msg: fmt.Sprintf("name %q holds %q, which 1Password secret references do not allow (letters, digits, \"-\", \"_\", \".\" and spaces only)", p, rune(c)),
				Hint: "refer to that vault, item, section or field by its id instead"}
			switch {
			case c == '%':
				e.Msg = fmt.Sprintf("name %q holds a %%XX escape; 1Password names take none", p)
				e.Hint = "write spaces as spaces; for any other character use the id"
			case c == '$' && i == 0:
				e.Hint = "variables such as $APP_ENV are expanded by 1Password's op run and op inject, not here; " +
					"set the whole reference in the variable instead, or use the id"
			case c >= 0x80:
				e.Msg = fmt.Sprintf("name %q holds non-ASCII text, which 1Password secret references do not allow", p)
			}
			return e
		}
		pos += len(p) + 1
	}
	// References are case-insensitive: keep the canonical form in one case.
	if a, ok := r.Params["attribute"]; ok {
		a = strings.ToLower(a)
		if !slices.Contains(attributes, a) {
			return &providers.RefError{Pos: -1, Msg: fmt.Sprintf("unknown attribute %q (a field has %s; a file attachment has %s)", r.Params["attribute"],
				strings.Join(FieldAttributes, ", "), strings.Join(FileAttributes, ", "))}
		}
		r.Params["attribute"] = a
	}
	if f, ok := r.Params["ssh-format"]; ok {
		f = strings.ToLower(f)
		if f != "openssh" {
			return &providers.RefError{Pos: -1, Msg: fmt.Sprintf("unknown ssh-format %q (known: openssh)", r.Params["ssh-format"])}
		}
		r.Params["ssh-format"] = f
		if a := r.Params["attribute"]; a != "" && a != "value" {
			return &providers.RefError{Pos: -1, Msg: fmt.Sprintf("ssh-format=openssh formats a private key's value; it does not combine with attribute=%s", a)}
		}
	}
	return nil
}
