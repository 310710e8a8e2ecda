package providers

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/secretbroker/secretbroker/secret"
)

// Secret is one resolved reference.
type Secret struct {
	Value   secret.Value
	Version string // the provider's version id, when it has one
	// Lease data for dynamic secrets (Vault); zero for static ones.
	LeaseID   string
	LeaseTTL  time.Duration
	Renewable bool
}

// Result is the outcome for one Ref of a Fetch call.
type Result struct {
	Secret Secret
	Err    error
}

// Provider fetches secrets for one scheme. Fetch gets every distinct Ref of
// its scheme at once, so it can batch and share reads, and returns one Result
// per Ref in the same order. It must honour ctx's deadline.
type Provider interface {
	Fetch(ctx context.Context, refs []Ref) []Result
}

// ProviderFunc adapts a function to Provider.
type ProviderFunc func(ctx context.Context, refs []Ref) []Result

func (f ProviderFunc) Fetch(ctx context.Context, refs []Ref) []Result { return f(ctx, refs) }

// Kind classifies a fetch failure, so callers can branch (optional secrets
// skip NotFound only) and users get the right exit code.
type Kind int

const (
	KindOther       Kind = iota
	KindNotFound         // no secret, or no such key in it
	KindDenied           // the credential may not read it (or the local user may not)
	KindUnreachable      // the provider could not be reached or is sealed
	KindTimeout          // the deadline passed
	KindInvalid          // the secret exists but cannot give what the reference asks
	KindConfig           // the provider is misconfigured (no credentials, bad address)
)

var kindNames = map[Kind]string{
	KindOther: "failed", KindNotFound: "not found", KindDenied: "denied",
	KindUnreachable: "unreachable", KindTimeout: "timeout", KindInvalid: "invalid", KindConfig: "misconfigured",
}

func (k Kind) String() string { return kindNames[k] }

// Error is a failure to fetch one reference. Its message names the reference
// as the user wrote it and never contains a secret value.
type Error struct {
	Ref    string // as written
	Kind   Kind
	Detail string // what was expected, what was found, what to do
	Err    error  // underlying cause, may be nil
}

func (e *Error) Error() string {
	s := e.Kind.String()
	if e.Ref != "" {
		s = e.Ref + ": " + s
	}
	if t := e.tail(); t != "" {
		s += ": " + t
	}
	return s
}

// tail is the message after "REF: KIND". A cause that is itself an *Error
// of the same kind for the same (or no) reference adds only its own tail,
// so no message reads "misconfigured: … misconfigured". A library's
// multi-line cause is put on one line.
func (e *Error) tail() string {
	var parts []string
	if e.Detail != "" {
		parts = append(parts, e.Detail)
	}
	if e.Err != nil {
		inner, ok := e.Err.(*Error)
		switch {
		case ok && inner.Kind == e.Kind && (inner.Ref == "" || inner.Ref == e.Ref):
			if t := inner.tail(); t != "" {
				parts = append(parts, t)
			}
		default:
			parts = append(parts, OneLine(e.Err.Error()))
		}
	}
	return strings.Join(parts, ": ")
}

// multiHeader is the first line go-multierror (used by the Vault and AWS
// libraries) puts before its bullet list.
var multiHeader = regexp.MustCompile(`^\d+ errors? occurred:$`)

// OneLine puts a library's multi-line error message on one line, as every
// message of ours is: "1 error occurred:\n\t* permission denied" becomes
// "permission denied", and other line breaks become "; ".
func OneLine(msg string) string {
	if !strings.Contains(msg, "\n") {
		return msg
	}
	var out []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || multiHeader.MatchString(l) {
			continue
		}
		out = append(out, strings.TrimPrefix(l, "* "))
	}
	return strings.Join(out, "; ")
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error for ref.
func Errorf(ref Ref, kind Kind, format string, args ...any) *Error {
	return &Error{Ref: ref.Raw, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// KindOf returns the Kind of err, KindOther when it is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTimeout
	}
	return KindOther
}
