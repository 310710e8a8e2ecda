package onepassword

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/secretbroker/secretbroker/providers"
)

// A reference's identity is op://VAULT/ITEM/[SECTION/]FIELD with the vault
// and the item by NAME, lower-cased (1Password names are case-insensitive):
// a vault or item written by its id is matched by the name it has, so one
// secret has one identity however it is written, and policies are written
// with names. Through Connect the ids are resolved to names with calls that
// return no secret value (the vault, the vault's item list) before the
// decision, and the item is then read by id.
//
// Two placeholders stand for a name not known yet:
//
//   - PlanName ("*"), in the plan (checked before any request) for a vault
//     or item written by its id: an allow pattern accepts it where it has a
//     name, a deny pattern does not; the request-time check decides.
//   - UnknownName ("~"), at request time when the name cannot be learnt (a
//     service account, whose SDK resolves references itself): an allow
//     pattern accepts it only where it has a glob, a deny pattern always, so
//     the read passes only if it would pass whatever the name is.
//
// A resolved name is written with every byte that a reference name may not
// hold (letters, digits, "-", "_", ".", space) as %XX, so a name can never
// read as a placeholder or shift a "/".
const (
	PlanName    = "*"
	UnknownName = "~"
)

// canonName is a vault or item name as identities spell it.
func canonName(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == '_' || c == '.' || c == ' ' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// identity is ref's identity with its vault and item spelt vault and item
// ("" keeps the part as written).
func identity(ref providers.Ref, vault, item string) string {
	parts := strings.Split(strings.ToLower(ref.Path), "/")
	if vault != "" {
		parts[0] = vault
	}
	if item != "" && len(parts) > 1 {
		parts[1] = item
	}
	return Scheme + "://" + strings.Join(parts, "/")
}

// byID reports whether a vault or item part of a reference is an id (26
// lower-case letters and digits; a name of that shape is taken for one).
func byID(part string) bool { return idRE.MatchString(strings.ToLower(part)) }

// placeholders is ref's identity with each part written by id replaced by
// name (PlanName or UnknownName).
func placeholders(ref providers.Ref, name string) string {
	v, it, _, _ := Parts(ref)
	var vault, item string
	if byID(v) {
		vault = name
	}
	if byID(it) {
		item = name
	}
	return identity(ref, vault, item)
}

// Identity is the providers.Registration hook: the identity a plan is
// checked on, with PlanName for a vault or item written by its id.
func Identity(ref providers.Ref, _ providers.Env) (string, error) {
	return placeholders(ref, PlanName), nil
}

// Pattern is the providers.Registration hook for op:// policy patterns: a
// glob of names, lower-cased, as for every scheme. A vault or item part
// that looks like an id is refused, since identities hold names and a deny
// written with an id would never match. The vault and item parts of an
// allow also accept PlanName, those of a deny UnknownName (see above).
func Pattern(path string, deny bool) (string, error) {
	if strings.ContainsAny(path, "?#") {
		return "", fmt.Errorf("patterns match SCHEME://PATH; a grant is per secret, not per key or version")
	}
	segs := strings.Split(strings.ToLower(path), "/")
	var out []string
	for i, seg := range segs {
		if i >= 2 || strings.Contains(seg, "**") {
			out = append(out, providers.Glob(strings.Join(segs[i:], "/")))
			break
		}
		if byID(seg) {
			return "", fmt.Errorf("%q looks like a 1Password id; policies match vault and item names (inject resolves an id to its name before it decides): write the name", seg)
		}
		alt := PlanName
		if deny {
			alt = UnknownName
		}
		out = append(out, "(?:"+providers.Glob(seg)+"|"+regexp.QuoteMeta(alt)+")")
	}
	return strings.Join(out, "/"), nil
}

// checkConnect is the Connect provider's request-time check, on the
// names Connect gave for the vault and (once known, "" before) the item.
func checkConnect(ctx context.Context, ref providers.Ref, vaultName, itemTitle string) error {
	item := ""
	if itemTitle != "" {
		item = canonName(itemTitle)
	}
	return withGateRef(providers.CheckGate(ctx, identity(ref, canonName(vaultName), item)), ref)
}

// checkUnresolved is the service account's request-time check: its SDK
// resolves references itself, so a part written by id is UnknownName and
// the read passes only if the policies allow it whatever that part names.
func checkUnresolved(ctx context.Context, ref providers.Ref) error {
	err := providers.CheckGate(ctx, placeholders(ref, UnknownName))
	if err != nil {
		if v, it, _, _ := Parts(ref); byID(v) || byID(it) {
			err = &providers.Error{Kind: providers.KindDenied,
				Detail: "with a service account inject cannot learn which vault or item an id names before the SDK reads it, and the policy's decision depends on it: refer to the vault and item by name, or use Connect",
				Err:    err}
		}
	}
	return withGateRef(err, ref)
}

func withGateRef(err error, ref providers.Ref) error {
	if pe, ok := err.(*providers.Error); ok {
		pe.Ref = ref.Raw
	}
	return err
}
