// Package pipeline is the one path a secret takes, in the order
// docs/reference.md fixes (and so the exit code that wins when several
// things are wrong): validate the declaration (64), check the policy (77),
// open the directory (73), fetch (69), write (73), start the app (126/127).
// Its Run holds the providers (one per scheme, shared, see providers.Pool)
// and its Deliver is the one resolve-and-deliver path, applying the rules
// every mode shares (Judge: the optional-secret rule and the size cap;
// Lookup/Render: templates; the key extraction is the providers') for
// inject (all or nothing), inject check (report, write nothing) and the
// broker's cycles (only the due subset, unchanged files skipped, keeping
// the last good file). The broker keeps only the schedule; Handoff, Keep
// and Release of provider lifecycles are here too.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	// Undelivered: the value was fetched, then refused (the size cap) or
	// not written (Broker); Err says why. Otherwise Err is the fetch's.
	Undelivered bool
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
		if t.Refused == nil { // refused by the read gate: it has no identity, and Sources says why
			denied = append(denied, set.CheckFile(t.Where+" source", t.Identity)...)
		}
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
		// Read through the declaration's environment, as every setting is.
		RuntimeDir: r.Spec.Getenv("XDG_RUNTIME_DIR"),
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
		got, err := res.Lookup(s.Ref)
		if err != nil {
			out[i].Err = err
			out[i].Skipped = s.Optional && providers.KindOf(err) == providers.KindNotFound && (mayskip == nil || mayskip(s))
			if out[i].Skipped {
				out[i].Err = nil
			}
			continue
		}
		out[i].Got = got
		if v := r.Policies.CheckSize(s.Name, out[i].Got.Value.Len()); v != nil {
			out[i].Err, out[i].Undelivered = policy.Denied{*v}, true
		}
	}
	return out
}

// Mode is how Deliver treats what it resolves.
type Mode int

const (
	// Inject resolves every secret, all or nothing: every failed fetch is
	// returned at once (69), then every value over the size cap (77); then
	// it writes every secret and template (73, 64), removing what it wrote
	// on any failure. With no Dir it writes nothing (lint --known-secrets).
	Inject Mode = iota
	// Check resolves every secret and reports on each; it writes nothing.
	// Its error (69) counts the failures.
	Check
	// Broker resolves the due subset, writes only the files whose digest
	// changed since Files last saw them, and keeps the last good file of
	// any secret or template it cannot deliver. Values are wiped before
	// Deliver returns: the broker keeps digests, not values.
	Broker
)

// Delivery is one call of Deliver.
type Delivery struct {
	Mode Mode
	Dir  *tmpfs.Dir
	// Due (Broker) is the secrets to resolve; templates are rendered only
	// when they are every declared secret. Inject and Check take them all.
	Due []spec.Secret
	// MaySkip (Broker) says whether an optional secret that is not found
	// may be skipped (the broker does not skip one it delivered before).
	MaySkip func(spec.Secret) bool
	// Files (Broker) holds the digest of each file in Dir.
	Files *Files
	// Open replaces the Run's providers (the broker's timed opener).
	Open providers.Opener
}

// Report is what Deliver did: an outcome per secret, in the order given,
// and each file it wrote or failed to write.
type Report struct {
	Outcomes []Outcome
	Files    []File
}

// File is one file Deliver wrote, or failed to write (Err).
type File struct {
	Name     string
	Bytes    int
	Replaced bool // an earlier file of that name was replaced (Broker)
	Err      error
}

// Deliver resolves the secrets under one --timeout, applies the rules
// every mode shares (Judge), and delivers them into the directory as the
// mode says. It is the one path from a declaration to files: inject, inject
// check and the broker's cycles differ only in Mode.
func (r *Run) Deliver(ctx context.Context, dl Delivery) (Report, error) {
	secrets := r.Spec.Secrets
	var mayskip func(spec.Secret) bool
	if dl.Mode == Broker {
		secrets, mayskip = dl.Due, dl.MaySkip
	}
	open := dl.Open
	if open == nil {
		open = r.Open
	}
	refs := make([]providers.Ref, len(secrets))
	for i, s := range secrets {
		refs[i] = s.Ref
	}
	res := providers.Resolve(r.Gate(ctx), refs, open, providers.Options{Timeout: r.Spec.Timeout})
	rep := Report{Outcomes: r.Judge(secrets, res, mayskip)}
	switch dl.Mode {
	case Check:
		return rep, checkErr(rep.Outcomes)
	case Broker:
		defer func() {
			for _, s := range res.Secrets {
				s.Value.Wipe()
			}
		}()
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		return rep, r.refresh(dl, &rep, len(secrets) == len(r.Spec.Secrets))
	}
	r.Outcomes = rep.Outcomes
	if err := r.allOrNothing(rep.Outcomes); err != nil || dl.Dir == nil {
		return rep, err
	}
	return rep, r.write(dl.Dir, &rep)
}

func checkErr(out []Outcome) error {
	failed := 0
	for _, o := range out {
		if o.Err != nil {
			failed++
		}
	}
	if failed > 0 {
		return cli.Exit(cli.ExitProvider, fmt.Errorf("%d of %d secret(s) failed", failed, len(out)))
	}
	return nil
}

// allOrNothing is inject's verdict on the outcomes: optional secrets that
// are not found are skipped; every failed fetch is returned, all at once,
// with exit code 69; then every value over the size cap, with 77.
func (r *Run) allOrNothing(out []Outcome) error {
	var fails []string
	var over policy.Denied
	seen := map[string]bool{}
	for _, o := range out {
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

// write writes every resolved secret and template (73; a template that
// cannot be rendered is 64). On any failure it removes what it wrote.
func (r *Run) write(d *tmpfs.Dir, rep *Report) error {
	fail := func(err error) error {
		if werr := d.Wipe(); werr != nil {
			r.Log.Error("cannot remove files after a failed write", "err", werr)
		}
		return err
	}
	for _, o := range rep.Outcomes {
		if o.Skipped {
			continue
		}
		v := o.Got.Value.Reveal()
		if err := d.Write(o.Secret.Name, v, o.Secret.Mode); err != nil {
			return fail(cli.Exit(cli.ExitDir, err))
		}
		rep.Files = append(rep.Files, File{Name: o.Secret.Name, Bytes: len(v)})
	}
	lookup := Lookup(rep.Outcomes)
	for _, t := range r.Spec.Templates {
		out, err := Render(t, lookup)
		if err != nil {
			return fail(err)
		}
		err = d.Write(t.Dest, out, t.Mode)
		n := len(out)
		clear(out)
		if err != nil {
			return fail(cli.Exit(cli.ExitDir, err))
		}
		rep.Files = append(rep.Files, File{Name: t.Dest, Bytes: n})
	}
	return nil
}

// refresh is the broker's delivery: each resolved secret's file is written
// when its digest changed; a value the size cap refuses (77) or a file
// that cannot be written (73) leaves the last good file in place, as does
// a failed fetch (69). Templates are rendered only when every secret was
// resolved in this delivery and nothing failed. The error lists every
// distinct failure; its code is the last kind seen.
func (r *Run) refresh(dl Delivery, rep *Report, every bool) error {
	var fails []string
	seen := map[string]bool{}
	code := cli.ExitProvider
	failed := func(c int, err error) {
		if c != 0 {
			code = c
		}
		if msg := err.Error(); !seen[msg] {
			seen[msg] = true
			fails = append(fails, msg)
		}
	}
	put := func(name string, val []byte, mode os.FileMode) error {
		replaced, wrote, err := dl.Files.put(dl.Dir, name, val, mode)
		if err != nil {
			rep.Files = append(rep.Files, File{Name: name, Err: err})
		} else if wrote {
			rep.Files = append(rep.Files, File{Name: name, Bytes: len(val), Replaced: replaced})
		}
		return err
	}
	for i := range rep.Outcomes {
		o := &rep.Outcomes[i]
		switch {
		case o.Skipped:
		case o.Err != nil && !o.Undelivered: // the fetch: the broker's schedule logs it
			failed(0, o.Err)
		case o.Err != nil: // the policy's size cap
			failed(cli.ExitPolicy, o.Err)
			r.Log.Error("secret refused by the policy; the last good file stays", "secret", o.Secret.Name, "err", o.Err)
		default:
			if err := put(o.Secret.Name, o.Got.Value.Reveal(), o.Secret.Mode); err != nil {
				o.Err, o.Undelivered = err, true
				failed(cli.ExitDir, err)
				r.Log.Error("cannot write a secret file; the last good file stays", "secret", o.Secret.Name, "err", err)
			}
		}
	}
	if every && len(fails) == 0 {
		lookup := Lookup(rep.Outcomes)
		for _, t := range r.Spec.Templates {
			out, err := Render(t, lookup)
			if err != nil {
				failed(0, err)
				r.Log.Error("cannot render a template; the last good file stays", "template", t.Dest, "err", err)
				continue
			}
			err = put(t.Dest, out, t.Mode)
			clear(out)
			if err != nil {
				failed(cli.ExitDir, err)
				r.Log.Error("cannot write a template file; the last good file stays", "template", t.Dest, "err", err)
			}
		}
	}
	if len(fails) > 0 {
		return cli.Exit(code, fmt.Errorf("%d failure(s):\n  %s", len(fails), strings.Join(fails, "\n  ")))
	}
	return nil
}

// Render renders one template; its error (64) names the template, never a
// value.
func Render(t spec.Template, lookup func(name string) ([]byte, error)) ([]byte, error) {
	if t.Withheld || t.Refused != nil {
		// CheckPolicy (77) or Load (64) refuses such a template first;
		// should a caller skip them, it is still never rendered empty.
		return nil, cli.Exit(cli.ExitPolicy, fmt.Errorf("%s (%s): the source was not read", t.Where, t.Source))
	}
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
		reg, _ := providers.Lookup(scheme)
		for _, name := range providers.StrippedEnv(scheme, r.Spec.ProviderEnv(reg.Block)) {
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
