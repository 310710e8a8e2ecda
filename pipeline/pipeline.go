// Package pipeline is the one path a secret takes, in the order
// docs/reference.md fixes (and so the exit code that wins when several
// things are wrong): validate the declaration (64), check the policy (77),
// open the directory (73), fetch (69), write (73), start the app (126/127).
// Its Run holds the providers (one per scheme, shared, see providers.Pool)
// and applies the rules every mode shares (Judge: the optional-secret rule
// and the size cap; Lookup/Render: templates) for inject (Fetch, Write: all
// or nothing), check (Check: report, write nothing) and the broker's
// cycles (only the due subset, keeping the last good file).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/policy"
	"github.com/secretbroker/secretbroker/process"
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/spec"
	"github.com/secretbroker/secretbroker/tmpfs"
)

// Run is one pass of the pipeline over a spec.
type Run struct {
	Spec *spec.Spec
	Log  *slog.Logger

	Policies policy.Set
	Start    *policy.Start // how inject starts the app (nil: no app here)
	Outcomes []Outcome     // of the last Fetch

	// pool builds each provider once; the broker's cycles share it.
	pool *providers.Pool
}

// Outcome is what became of one declared secret: its value and metadata
// when resolved, skipped (optional and not found), or why it failed (the
// provider's error, or the policy's size cap).
type Outcome struct {
	Secret  spec.Secret
	Got     providers.Secret
	Skipped bool
	Err     error
}

// New checks that every scheme the spec uses is built in.
func New(s *spec.Spec, log *slog.Logger) (*Run, error) {
	if log == nil {
		log = slog.Default()
	}
	var probs spec.Problems
	for _, sec := range s.Secrets {
		if _, ok := providers.Lookup(sec.Ref.Scheme); !ok {
			probs = append(probs, spec.Problem{Path: sec.Where, Msg: fmt.Sprintf("this build has no %s provider (built in: %s)", sec.Ref.Scheme, strings.Join(providers.Registered(), ", "))})
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	pool := providers.NewPool(func(reg providers.Registration) providers.Env { return s.ProviderEnv(reg.Block) })
	return &Run{Spec: s, Log: log, pool: pool}, nil
}

// CheckPolicy loads the policies in force and checks the plan (77).
func (r *Run) CheckPolicy() error {
	set, notes, err := policy.LoadSet(r.Spec.PolicyFile)
	for _, n := range notes {
		r.Log.Warn(n)
	}
	var ge *policy.GuardrailError
	if errors.As(err, &ge) {
		// The platform's limit cannot be read exactly: fail closed.
		return cli.Exit(cli.ExitPolicy, err)
	}
	if err != nil {
		// An unreadable or malformed policy is a configuration error.
		return cli.Exit(cli.ExitUsage, err)
	}
	r.Policies = set
	plan := policy.Plan{Dir: r.Spec.Dir, AllowDisk: r.Spec.AllowDisk, Start: r.Start}
	for _, s := range r.Spec.Secrets {
		plan.Items = append(plan.Items, policy.Item{Name: s.Name, Ref: s.Ref, Identity: r.Identity(s.Ref), Exposed: s.ExposeAs != ""})
	}
	err = set.Check(plan)
	// Template sources are read on the workload's behalf: the guardrail
	// decides on them as on any other file.
	var denied policy.Denied
	errors.As(err, &denied)
	for _, t := range r.Spec.Templates {
		denied = append(denied, set.CheckFile(t.Where+" source", t.Identity)...)
	}
	if len(denied) > 0 {
		return cli.Exit(cli.ExitPolicy, denied)
	}
	return cli.Exit(cli.ExitPolicy, err)
}

// Identity is the canonical identity the policies match for ref under the
// spec's provider settings (see providers.IdentityOf); ref.Target() when
// it cannot be worked out before a request (the provider's request-time
// check then decides).
func (r *Run) Identity(ref providers.Ref) string {
	id, err := providers.IdentityOf(ref, r.Spec.ProviderEnv)
	if err != nil {
		return ref.Target()
	}
	return id
}

// Gate puts the request-time policy check into ctx: every provider asks
// it about the identity of each request it is about to send.
func (r *Run) Gate(ctx context.Context) context.Context {
	if len(r.Policies) == 0 {
		return ctx
	}
	ctx = providers.WithGate(ctx, r.Policies.Gate)
	if g := r.Policies.Guardrail(); len(g) > 0 {
		ctx = providers.WithFileGate(ctx, g.Gate)
	}
	return ctx
}

// OpenDir prepares the secrets directory (73).
func (r *Run) OpenDir() (*tmpfs.Dir, error) {
	d, err := tmpfs.Open(r.Spec.Dir, tmpfs.Options{
		AllowDisk: r.Spec.AllowDisk,
		Mount:     r.Spec.Mount,
		Owner:     r.Spec.User,
		Fallback:  !r.Spec.DirIsSet,
		Logger:    r.Log,
	})
	if err != nil {
		return nil, cli.Exit(cli.ExitDir, err)
	}
	if d.Path != r.Spec.Dir && len(r.Policies) > 0 {
		// A fallback directory must pass the dirs: rule too.
		plan := policy.Plan{Dir: d.Path}
		if err := r.Policies.Check(plan); err != nil {
			d.Close()
			return nil, cli.Exit(cli.ExitPolicy, err)
		}
	}
	return d, nil
}

// Open returns the provider for scheme, built once for the Run's life
// and shared by every caller (it is safe for concurrent use).
func (r *Run) Open(ctx context.Context, scheme string) (providers.Provider, error) {
	return r.pool.Open(ctx, scheme)
}

// Resolve fetches every reference of the spec under one --timeout,
// opening only the providers whose schemes it uses.
func (r *Run) Resolve(ctx context.Context) providers.Resolution {
	return providers.Resolve(r.Gate(ctx), r.Spec.Refs(), r.Open, providers.Options{Timeout: r.Spec.Timeout})
}

// Judge applies the rules every mode shares to a resolution: a secret
// that is optional and not found is skipped (when mayskip allows it; the
// broker does not skip a secret it has delivered before); a value over the
// policy's size cap fails with a policy.Denied.
func (r *Run) Judge(secrets []spec.Secret, res providers.Resolution, mayskip func(spec.Secret) bool) []Outcome {
	out := make([]Outcome, len(secrets))
	for i, s := range secrets {
		out[i].Secret = s
		if err := res.Err(s.Ref); err != nil {
			out[i].Err = err
			out[i].Skipped = s.Optional && providers.KindOf(err) == providers.KindNotFound && (mayskip == nil || mayskip(s))
			if out[i].Skipped {
				out[i].Err = nil
			}
			continue
		}
		out[i].Got, _ = res.Get(s.Ref)
		if v := r.Policies.CheckSize(s.Name, out[i].Got.Value.Len()); v != nil {
			out[i].Err = policy.Denied{*v}
		}
	}
	return out
}

// Check resolves every secret and judges it, writing nothing (inject
// check). The error, with exit code 69, counts the failures.
func (r *Run) Check(ctx context.Context) ([]Outcome, error) {
	out := r.Judge(r.Spec.Secrets, r.Resolve(ctx), nil)
	failed := 0
	for _, o := range out {
		if o.Err != nil {
			failed++
		}
	}
	if failed > 0 {
		return out, cli.Exit(cli.ExitProvider, fmt.Errorf("%d of %d secret(s) failed", failed, len(out)))
	}
	return out, nil
}

// Fetch resolves every secret under one --timeout (inject: all or
// nothing). Optional secrets that are not found are skipped; every failed
// fetch is returned, all at once, with exit code 69; then every value over
// the policy's size cap, with 77.
func (r *Run) Fetch(ctx context.Context) error {
	r.Outcomes = r.Judge(r.Spec.Secrets, r.Resolve(ctx), nil)
	var fails []string
	var over policy.Denied
	seen := map[string]bool{}
	for _, o := range r.Outcomes {
		var d policy.Denied
		switch {
		case o.Skipped:
			r.Log.Info("optional secret not found; skipped", "secret", o.Secret.Name, "ref", o.Secret.Ref.Raw)
		case errors.As(o.Err, &d):
			over = append(over, d...)
		case o.Err != nil:
			if msg := o.Err.Error(); !seen[msg] {
				seen[msg] = true
				fails = append(fails, fmt.Sprintf("%s (%s): %s", o.Secret.Name, o.Secret.Where, msg))
			}
		}
	}
	if len(fails) > 0 {
		return cli.Exit(cli.ExitProvider, fmt.Errorf("%d secret(s) could not be resolved:\n  %s", len(fails), strings.Join(fails, "\n  ")))
	}
	if len(over) > 0 {
		return cli.Exit(cli.ExitPolicy, over)
	}
	return nil
}

// Write writes every fetched secret and template (73; a template that
// cannot be rendered is 64). On any failure it removes what it wrote.
func (r *Run) Write(d *tmpfs.Dir) error {
	fail := func(err error) error {
		if werr := d.Wipe(); werr != nil {
			r.Log.Error("cannot remove files after a failed write", "err", werr)
		}
		return err
	}
	for _, o := range r.Outcomes {
		if o.Skipped {
			continue
		}
		if err := d.Write(o.Secret.Name, o.Got.Value.Reveal(), o.Secret.Mode); err != nil {
			return fail(cli.Exit(cli.ExitDir, err))
		}
	}
	lookup := Lookup(r.Outcomes)
	for _, t := range r.Spec.Templates {
		out, err := Render(t, lookup)
		if err != nil {
			return fail(err)
		}
		err = d.Write(t.Dest, out, t.Mode)
		clear(out)
		if err != nil {
			return fail(cli.Exit(cli.ExitDir, err))
		}
	}
	return nil
}

// Render renders one template; its error (64) names the template, never a
// value.
func Render(t spec.Template, lookup func(name string) ([]byte, error)) ([]byte, error) {
	out, err := spec.Render(t, lookup)
	if err != nil {
		return nil, cli.Exit(cli.ExitUsage, fmt.Errorf("%s (%s): %v", t.Where, t.Source, err))
	}
	return out, nil
}

// AppEnv builds the app's environment: NAME_FILE for each delivered
// secret, expose_as values when asked (with a warning), without the
// references, the credentials inject consumed, INJECT_* or strip_env.
func (r *Run) AppEnv(d *tmpfs.Dir) ([]string, error) {
	return r.env(d, r.Outcomes, r.pool.Opened(), true)
}

// HelperEnv is the environment of a program the broker starts (the notify
// command): stripped as the app's is, with NAME_FILE for each declared
// secret, no expose_as value, and no provider's credentials.
func (r *Run) HelperEnv(d *tmpfs.Dir) ([]string, error) {
	outcomes := make([]Outcome, len(r.Spec.Secrets))
	for i, s := range r.Spec.Secrets {
		outcomes[i].Secret = s
	}
	return r.env(d, outcomes, providers.Registered(), false)
}

func (r *Run) env(d *tmpfs.Dir, outcomes []Outcome, schemes []string, expose bool) ([]string, error) {
	plan := process.EnvPlan{
		Base:     r.Spec.Environ,
		Remove:   map[string]bool{},
		Set:      map[string]string{},
		StillRef: func(v string) bool { _, err := providers.ParseRef(v); return r.Spec.IsEnvRef(v) && err == nil },
	}
	for _, name := range r.Spec.StripEnv {
		plan.Remove[name] = true
	}
	for _, scheme := range schemes {
		for _, name := range providers.ConsumedEnv(scheme) {
			plan.Remove[name] = true
		}
	}
	for _, x := range outcomes {
		if x.Secret.FromEnv != "" {
			plan.Remove[x.Secret.FromEnv] = true
		}
		if x.Skipped {
			continue
		}
		if x.Secret.EnvVar != "" {
			plan.Set[x.Secret.EnvVar] = d.File(x.Secret.Name)
		}
		if expose && x.Secret.ExposeAs != "" {
			r.Log.Warn("secret value placed in the environment (expose_as): child processes and /proc/PID/environ can read it", "secret", x.Secret.Name, "variable", x.Secret.ExposeAs)
			plan.Set[x.Secret.ExposeAs] = string(x.Got.Value.Reveal())
		}
	}
	env, err := plan.Build()
	return env, cli.Exit(cli.ExitUsage, err)
}

// Lifecycles are the opened providers that hold something alive.
func (r *Run) Lifecycles() []providers.Lifecycle { return r.pool.Lifecycles() }

// Handoff tells every provider that holds something alive that the app is
// about to start (Lifecycle.Handoff): a Vault login token no lease needs is
// revoked there. supervised says whether inject (or the broker) stays to
// renew leases. Every provider is told; the errors come back together.
func (r *Run) Handoff(ctx context.Context, supervised bool) error {
	var errs []error
	for _, l := range r.Lifecycles() {
		if err := l.Handoff(ctx, supervised); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Keep starts every provider's lease and token renewals (Lifecycle.Keep);
// they stop when ctx ends.
func (r *Run) Keep(ctx context.Context) {
	for _, l := range r.Lifecycles() {
		go l.Keep(ctx)
	}
}

// Release revokes what the providers own (Lifecycle.Close): their login
// tokens and leases. Each provider gets its own bound; failures are logged,
// since there is nothing left to fail.
func (r *Run) Release() {
	for _, l := range r.Lifecycles() {
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		if err := l.Close(ctx); err != nil {
			r.Log.Warn("cannot release provider resources", "err", err)
		}
		cancel()
	}
}

// releaseTimeout bounds one provider's Close.
const releaseTimeout = 10 * time.Second

// WipeValues zeroes the fetched values held in memory.
func (r *Run) WipeValues() {
	for _, o := range r.Outcomes {
		o.Got.Value.Wipe()
	}
}

// Lookup gives templates the values of outcomes by secret name.
func Lookup(outcomes []Outcome) func(name string) ([]byte, error) {
	values := map[string]Outcome{}
	for _, o := range outcomes {
		values[o.Secret.Name] = o
	}
	return func(name string) ([]byte, error) {
		o, ok := values[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("secret %q is not declared", name)
		case o.Skipped:
			return nil, fmt.Errorf("secret %q is optional and was not found", name)
		case o.Err != nil:
			return nil, fmt.Errorf("secret %q was not delivered", name)
		}
		return o.Got.Value.Reveal(), nil
	}
}
