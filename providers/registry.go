package providers

import (
	"context"
	"fmt"
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

// Registration ties a scheme to its config block and factory.
type Registration struct {
	Scheme string
	Block  string // key under providers: in the config file
	New    Factory
	// Identity is the canonical identity of what ref will be read as under
	// the provider settings in env (the file's absolute real path, Vault's
	// namespace and path), which the policies match; nil: ref.Target().
	Identity func(ref Ref, env Env) (string, error)
}

var registry = map[string]Registration{}

// Register makes a provider available. The commands register the providers
// they are built with; this package imports none of them.
func Register(r Registration) {
	if _, dup := registry[r.Scheme]; dup {
		panic(fmt.Sprintf("providers: scheme %q registered twice", r.Scheme))
	}
	registry[r.Scheme] = r
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
