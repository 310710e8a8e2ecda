package providers

import (
	"context"
	"errors"
)

// A Gate decides, at request time, whether a provider may request the
// thing whose canonical identity is id ("vault://ns/secret/app/db",
// "file:///etc/app/s.yaml"): both policies in force match that identity.
// The plan is checked before any fetch; the gate is checked again on what
// each provider actually requests, after every decoding, prefixing and
// setting, so that two spellings of one secret cannot be treated
// differently.
type Gate func(id string) error

type gateKey struct{}

// WithGate records the gate providers must ask before each request.
func WithGate(ctx context.Context, g Gate) context.Context {
	return context.WithValue(ctx, gateKey{}, g)
}

// GateFrom is the gate recorded by WithGate, or nil.
func GateFrom(ctx context.Context) Gate {
	g, _ := ctx.Value(gateKey{}).(Gate)
	return g
}

// CheckGate asks ctx's gate about every identity of one request (a request
// that could be read as more than one identity must pass as each); nil
// when there is no gate. A refusal is an *Error of KindDenied.
func CheckGate(ctx context.Context, ids ...string) error {
	g := GateFrom(ctx)
	if g == nil {
		return nil
	}
	var errs []error
	for _, id := range ids {
		if err := g(id); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &Error{Kind: KindDenied, Detail: "the request is refused by the policy", Err: errors.Join(errs...)}
}

// IdentityOf is the canonical identity of what ref will be read as, given
// its provider's settings, as far as it is known before any request: the
// registration's Identity, or the reference's Target when the scheme
// defines none.
func IdentityOf(ref Ref, env func(block string) Env) (string, error) {
	reg, ok := Lookup(ref.Scheme)
	if !ok || reg.Identity == nil {
		return ref.Target(), nil
	}
	return reg.Identity(ref, env(reg.Block))
}

type fileGateKey struct{}

// WithFileGate records the gate for files read on the workload's behalf
// that are not secrets themselves (token, role-id, secret-id and JWT
// files; template sources): the guardrail. A provider passes it to
// readgate.
func WithFileGate(ctx context.Context, g Gate) context.Context {
	return context.WithValue(ctx, fileGateKey{}, g)
}

// FileGateFrom is the gate recorded by WithFileGate, or nil.
func FileGateFrom(ctx context.Context) func(id string) error {
	g, _ := ctx.Value(fileGateKey{}).(Gate)
	if g == nil {
		return nil
	}
	return g
}
