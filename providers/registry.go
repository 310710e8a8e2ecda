package providers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/secretbroker/secretbroker/identity"
)

// Env is what a provider gets to build itself: its own config block from
// the spec (providers.<block>, decoded from YAML, keys lower-cased by viper),
// the process environment for its standard variables (VAULT_ADDR,
// AWS_*, OP_*), the app's identity and a logger.
type Env struct {
	Config  map[string]any
	Getenv  func(string) string
	User    *identity.Identity // --user, or nil
	Logger  *slog.Logger
	Timeout time.Duration // the run's --timeout, for the provider's own clients
	// ConfigDir is the directory of the config file (the working directory
	// when there is none): relative paths in a provider block resolve
	// against it, as template sources do.
	ConfigDir string
	// Concurrency is how many requests the provider has in flight at once
	// (the block's concurrency key, see spec); 0 means DefaultConcurrency.
	Concurrency int
}

// DefaultConcurrency is a provider's requests in flight when its block
// sets no concurrency.
const DefaultConcurrency = 8

// InFlight is the provider's bound on requests in flight.
func (e Env) InFlight() int {
	if e.Concurrency > 0 {
		return e.Concurrency
	}
	return DefaultConcurrency
}

// Factory builds the provider for one scheme. It is called lazily, only
// when the spec has a reference of that scheme.
type Factory func(ctx context.Context, env Env) (Provider, error)

// Registration is a provider's descriptor: everything the rest of the
// program knows about a scheme, kept in the provider's package (each exports
// Descriptor) and registered by providers/builtin, so policy, process, spec
// and the commands name no scheme and a provider left out of a build leaves
// nothing of its scheme behind.
type Registration struct {
	Scheme string
	Block  string // key under providers: in the config file
	New    Factory
	// Identity is the canonical identity of what ref will be read as under
	// the provider settings in env (the file's absolute real path, Vault's
	// namespace and path), which the policies match; nil: ref.Target().
	Identity func(ref Ref, env Env) (string, error)
	// Syntax is what a reference of this scheme accepts beyond the common
	// grammar of ParseRef.
	Syntax Syntax
	// Pattern compiles the path of a policy pattern of this scheme (what
	// follows SCHEME://) to a regular expression, unanchored, over what
	// follows SCHEME:// in an identity; deny says whether the pattern is a
	// deny, since a part of an identity not known yet (aws-sm's account
	// before inject asked for it) must fail closed both ways. nil: the
	// path is a Glob, and "?" and "#" are refused.
	Pattern func(path string, deny bool) (string, error)
	// EnvRef: a value that starts with SCHEME:// in the environment is a
	// reference unless env_schemes says otherwise. file is not one:
	// ordinary variables hold file:// URLs.
	EnvRef bool
	// ConsumedEnv are the credential variables inject reads to reach this
	// provider (VAULT_TOKEN); the app never sees them once the provider was
	// opened, and a program the broker starts never does.
	ConsumedEnv []string
	// KeptEnv are the ConsumedEnv variables the provider's block says to
	// leave to the app after all (an app that talks to the same service
	// itself); nil keeps none.
	KeptEnv func(env Env) []string
	// Policy is the provider's `inject policy NAME` and its part of
	// `inject policy audit`; nil when it has none.
	Policy *PolicyHooks
}

// Syntax is a scheme's part of the reference grammar.
type Syntax struct {
	Params []string // the ?NAME= parameters it knows
	Key    bool     // a #KEY is allowed
	// Lower: the canonical form lower-cases the path (1Password names are
	// case-insensitive).
	Lower bool
	// TrimLead drops a leading "/" from the path: the provider requests
	// the path without it (Vault's API paths are relative to /v1/).
	TrimLead bool
	// Local: the identity is a local file's absolute real path, which a
	// policy pattern is resolved to as well.
	Local bool
	// Check enforces the rest of the scheme's grammar on a parsed
	// reference (1Password's VAULT/ITEM/FIELD shape); its RefError's Ref
	// is filled in by ParseRef.
	Check func(r *Ref) *RefError
}

// PolicyHooks are a provider's policy commands.
type PolicyHooks struct {
	Use   string // `inject policy USE`: its name, then its arguments
	Short string
	// Generate adds the command's own flags to f and returns what prints
	// the least grant for refs (all the spec's references; it picks its
	// own): the grant on stdout, notes on stderr. A *UsageError means the
	// declaration asks for no grant or a malformed one (exit 64), as does
	// an *Error of KindConfig; any other error is the provider's (69).
	Generate func(f Flags) func(ctx context.Context, env Env, refs []Ref, stdout, stderr io.Writer) error
	// Audit compares the live credential with what refs need; broader is
	// true when it can do more.
	Audit func(ctx context.Context, env Env, refs []Ref, stdout, stderr io.Writer) (broader bool, err error)
}

// Flags is where a policy command declares flags of its own; the commands
// pass a *pflag.FlagSet.
type Flags interface {
	String(name, value, usage string) *string
	StringArray(name string, value []string, usage string) *[]string
}

// UsageError is a policy command's refusal of the declaration itself.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

var registry = map[string]Registration{}

// Register makes a provider available. The commands register the providers
// they are built with; this package imports none of them.
func Register(r Registration) {
	if _, dup := registry[r.Scheme]; dup {
		panic(fmt.Sprintf("providers: scheme %q registered twice", r.Scheme))
	}
	registry[r.Scheme] = r
}

// EnvSchemes are the schemes recognised in environment values by default
// (those whose registration says EnvRef), sorted.
func EnvSchemes() []string {
	var out []string
	for _, s := range Registered() {
		if registry[s].EnvRef {
			out = append(out, s)
		}
	}
	return out
}

// ConsumedEnv are the credential variables the provider of scheme reads
// (see Registration.ConsumedEnv); nil for a scheme not built in.
func ConsumedEnv(scheme string) []string { return registry[scheme].ConsumedEnv }

// StrippedEnv are the credential variables of scheme to take out of the
// app's environment under the provider settings in env: ConsumedEnv less
// what the block keeps (Registration.KeptEnv).
func StrippedEnv(scheme string, env Env) []string {
	r := registry[scheme]
	if r.KeptEnv == nil {
		return r.ConsumedEnv
	}
	keep := r.KeptEnv(env)
	var out []string
	for _, v := range r.ConsumedEnv {
		if !contains(keep, v) {
			out = append(out, v)
		}
	}
	return out
}

// Lookup returns the registration for scheme.
func Lookup(scheme string) (Registration, bool) {
	r, ok := registry[scheme]
	return r, ok
}

// Registered lists the registered schemes, sorted.
func Registered() []string {
	var out []string
	for s := range registry {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Lifecycle is implemented by providers that hold something alive after a
// fetch: a Vault token inject logged in for, dynamic-secret leases.
type Lifecycle interface {
	// Handoff runs after every file is written, just before the app starts.
	// supervised says whether inject stays as the app's parent (then Keep
	// runs until the app exits); a provider revokes here what nothing will
	// need (a login token no lease depends on) and warns about what will
	// expire unattended.
	Handoff(ctx context.Context, supervised bool) error
	// Keep renews leases until ctx ends (supervise mode, broker).
	Keep(ctx context.Context)
	// Close revokes what the provider owns (leases, its login token).
	Close(ctx context.Context) error
}

// LeaseRenewer is implemented by providers whose secrets carry renewable
// leases (Vault dynamic secrets). The broker renews such a lease at about
// 2/3 of its TTL, keeping the same credential (and the same file), and
// re-reads the secret only when renewal fails or no longer extends the
// lease, which is when its max TTL is near.
type LeaseRenewer interface {
	RenewLease(ctx context.Context, leaseID string) (ttl time.Duration, err error)
}
