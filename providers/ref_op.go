package providers

import (
	"fmt"
	"strings"
)

// onePasswordAttributes are the values 1Password documents for ?attribute=
// (its CLI secret reference syntax page): field metadata, or otp for the
// current one-time password of a TOTP field.
var onePasswordAttributes = []string{"id", "label", "otp", "purpose", "totp", "type", "value"}

// checkOnePassword enforces 1Password's secret reference syntax:
// op://VAULT/ITEM[/SECTION]/FIELD, each part a name of letters, digits,
// "-", "_", "." and spaces, or an id.
func checkOnePassword(r *Ref) *RefError {
	parts := strings.Split(r.Path, "/")
	if strings.HasPrefix(r.Path, "/") || len(parts) < 3 || len(parts) > 4 {
		return &RefError{Pos: -1, Msg: fmt.Sprintf("want op://VAULT/ITEM[/SECTION]/FIELD, got %d part(s)", len(parts))}
	}
	for _, p := range parts {
		if strings.TrimSpace(p) != p {
			return &RefError{Pos: -1, Msg: fmt.Sprintf("name %q has leading or trailing spaces", p)}
		}
		for _, c := range p {
			ok := c == '-' || c == '_' || c == '.' || c == ' ' ||
				(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
			if !ok {
				return &RefError{Pos: -1, Msg: fmt.Sprintf("name %q holds %q, which 1Password references do not allow", p, c),
					Hint: "refer to that vault, item, section or field by its id instead"}
			}
		}
	}
	if a, ok := r.Params["attribute"]; ok && !contains(onePasswordAttributes, strings.ToLower(a)) {
		return &RefError{Pos: -1, Msg: fmt.Sprintf("unknown attribute %q (known: %s)", a, strings.Join(onePasswordAttributes, ", "))}
	}
	if f, ok := r.Params["ssh-format"]; ok && strings.ToLower(f) != "openssh" {
		return &RefError{Pos: -1, Msg: fmt.Sprintf("unknown ssh-format %q (known: openssh)", f)}
	}
	return nil
}
