package awssm

import (
	"context"
	"strings"

	"github.com/secretbroker/secretbroker/providers"
)

// Identities are what a reference to id (a name, or an ARN) may read, as
// the policies match them: "aws-sm://NAME". An ARN is matched by the name
// it holds, so writing the ARN gives no other grant than writing the name.
// A name (or an ARN's name) ending in "-" and six letters or digits may be
// AWS's random suffix of a secret without it, which Secrets Manager then
// reads, so such a read must pass as both names. The first identity is the
// one a plan is checked on.
func Identities(id string) []string {
	name := id
	if strings.HasPrefix(id, "arn:") {
		if a, err := ParseARN(id); err == nil {
			name = a.Name
		}
	}
	out := []string{Scheme + "://" + name}
	if base, ok := cutSuffix(name); ok {
		if strings.HasPrefix(id, "arn:") {
			// A full ARN names the secret with its suffix: plan on the name.
			out = []string{Scheme + "://" + base, out[0]}
		} else {
			out = append(out, Scheme+"://"+base)
		}
	}
	return out
}

// cutSuffix removes a trailing "-XXXXXX" (six ASCII letters or digits).
func cutSuffix(name string) (string, bool) {
	if len(name) < 8 || name[len(name)-7] != '-' {
		return "", false
	}
	for _, c := range name[len(name)-6:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return "", false
		}
	}
	return name[:len(name)-7], true
}

// Identity is the providers.Registration hook: the identity a plan is
// checked on.
func Identity(ref providers.Ref, _ providers.Env) (string, error) {
	return Identities(ref.Path)[0], nil
}

// checkRequest asks ctx's gate about every identity a read of ref could be.
func checkRequest(ctx context.Context, ref providers.Ref) error {
	err := providers.CheckGate(ctx, Identities(ref.Path)...)
	if err != nil {
		if pe, ok := err.(*providers.Error); ok {
			pe.Ref = ref.Raw
		}
	}
	return err
}
