// Package broker is the sidecar's engine: the inject pipeline on a
// schedule. It resolves every declared secret, writes the files to a shared
// tmpfs directory, marks the first complete delivery with DIR/.ready, and
// then keeps each secret fresh on its own schedule (static secrets every
// refresh with jitter, leased ones before 2/3 of their TTL), replacing a
// file atomically only when its SHA-256 changed. It keeps digests, not
// values, between cycles. When a provider fails the last good file stays,
// the reference backs off, and readiness fails only after max_staleness.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/pipeline"
	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/spec"
	"github.com/secretbroker/secretbroker/tmpfs"
)

// Options tunes a Broker beyond what the spec says.
type Options struct {
	// Once resolves and writes once, then returns (init-container mode).
	Once bool
	// ExitWhen ends Run when this file appears (a Job's app writes it).
	ExitWhen string
	// Registry receives the metrics; nil makes a private one.
	Registry *prometheus.Registry
	// Now is the clock; nil is time.Now. Tests move it.
	Now func() time.Time
	// Jitter is the fraction of refresh a schedule may move by; default 0.1.
	Jitter float64
}

// Broker keeps one spec's secrets fresh in one directory.
type Broker struct {
	spec     *spec.Spec
	log      *slog.Logger
	run      *pipeline.Run
	dir      *tmpfs.Dir
	open     providers.Opener // b.provider with fetch latency metrics
	provider providers.Opener // the providers themselves, for their optional interfaces
	opts     Options
	now      func() time.Time
	notify   *Notifier
	reg      *prometheus.Registry
	m        *metrics

	poke chan struct{}

	// work serializes cycles and lease renewals, which own items, files,
	// delivered and kept. It is held across provider calls and disk
	// writes; the HTTP handlers never take it: they read state, the
	// snapshot published after each change.
	work      sync.Mutex
	items     []*item
	owner     map[string]*item // by secret name
	files     *pipeline.Files
	delivered bool // first complete delivery done
	kept      bool // lifecycles handed off and kept alive
	state     atomic.Pointer[snapshot]
}

// snapshot is what /readyz and /metrics read: a copy of each reference's
// state, published whole, so a handler answers without waiting for a
// provider or the disk.
type snapshot struct {
	delivered bool
	items     []itemState
}

type itemState struct {
	names       string // the secrets reading the reference, comma-separated
	secrets     []string
	lastSuccess time.Time
	lastErr     string
	leaseTTL    time.Duration
	fetchedAt   time.Time
}

// publish copies the state the handlers read. Callers hold b.work.
func (b *Broker) publish() {
	snap := &snapshot{delivered: b.delivered, items: make([]itemState, len(b.items))}
	for i, it := range b.items {
		snap.items[i] = itemState{names: it.names, secrets: it.nameList, lastSuccess: it.lastSuccess,
			lastErr: it.lastErr, leaseTTL: it.leaseTTL, fetchedAt: it.fetchedAt}
	}
	b.state.Store(snap)
}

// item is one distinct reference (deduped on its canonical form) and the
// secrets that read it.
type item struct {
	ref         providers.Ref
	secrets     []spec.Secret
	nameList    []string // the secrets' names, and joined with commas:
	names       string   // fixed at New, shared with every snapshot
	next        time.Time
	failures    int
	lastSuccess time.Time // zero until the first success
	lastErr     string
	leaseTTL    time.Duration // as granted by the last read or renewal
	fetchedAt   time.Time     // when leaseTTL was granted
	leaseID     string
	renewable   bool
	missing     bool // not found upstream after having been delivered
	skipped     bool // optional and not found
}

// New validates the broker settings (64), checks the policy (77), opens the
// directory (73) and adopts the files an earlier broker left there: they
// stay in place and are replaced atomically when their value changes.
func New(s *spec.Spec, log *slog.Logger, o Options) (*Broker, error) {
	if log == nil {
		log = slog.Default()
	}
	var probs spec.Problems
	if s.Refresh <= 0 {
		probs = append(probs, spec.Problem{Path: "refresh", Msg: "must be positive, e.g. 5m"})
	}
	if s.MaxStaleness <= 0 {
		probs = append(probs, spec.Problem{Path: "max_staleness", Msg: "must be positive, e.g. 1h"})
	}
	n, err := NewNotifier(s.Notify, nil, log) // its environment is set below
	if err != nil {
		probs = append(probs, spec.Problem{Path: "notify", Msg: err.Error()})
	}
	if len(probs) > 0 {
		return nil, cli.Exit(cli.ExitUsage, probs)
	}
	r, err := pipeline.New(s, log)
	if err != nil {
		return nil, cli.Exit(cli.ExitUsage, err)
	}
	if err := r.CheckPolicy(); err != nil {
		return nil, err
	}
	d, err := r.OpenDir()
	if err != nil {
		return nil, err
	}
	if n != nil {
		if n.env, err = r.HelperEnv(d); err != nil {
			d.Close()
			return nil, err
		}
	}
	if o.Jitter <= 0 || o.Jitter >= 1 {
		o.Jitter = 0.1
	}
	b := &Broker{spec: s, log: log, run: r, dir: d, opts: o, now: o.Now, notify: n, reg: o.Registry, owner: map[string]*item{}, poke: make(chan struct{}, 1)}
	if b.now == nil {
		b.now = time.Now
	}
	if b.reg == nil {
		b.reg = prometheus.NewRegistry()
	}
	b.m = newMetrics(b)
	if err := b.reg.Register(b.m); err != nil {
		d.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	b.provider = r.Open // one provider per scheme for the broker's life
	b.open = b.m.timedOpener(b.provider)

	byRef := map[string]*item{}
	for _, sec := range s.Secrets {
		c := sec.Ref.Canonical()
		it, ok := byRef[c]
		if !ok {
			it = &item{ref: sec.Ref}
			byRef[c] = it
			b.items = append(b.items, it)
		}
		it.secrets = append(it.secrets, sec)
		it.nameList = append(it.nameList, sec.Name)
		it.names = strings.Join(it.nameList, ",")
		b.owner[sec.Name] = it
	}
	b.files, _ = r.AdoptFiles(d)
	b.publish()
	return b, nil
}

// Dir is the secrets directory in use (it may be a fallback of the default).
func (b *Broker) Dir() *tmpfs.Dir { return b.dir }

// Registry holds the broker's metrics.
func (b *Broker) Registry() *prometheus.Registry { return b.reg }

// Run delivers every secret, then (unless Once) refreshes them until ctx
// ends or the ExitWhen file appears, and shuts down: files stay in place
// unless wipe_on_exit. In Once mode any failure is returned with its exit
// code (69 fetch, 73 write, 77 size policy).
func (b *Broker) Run(ctx context.Context) error {
	if b.opts.Once {
		defer b.dir.Close()
		err := b.Cycle(ctx, true)
		if err == nil {
			if herr := b.run.Handoff(ctx, false); herr != nil {
				return cli.Exit(cli.ExitProvider, herr)
			}
		}
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.log.Info("broker started", "secrets", len(b.spec.Secrets), "references", len(b.items), "templates", len(b.spec.Templates),
		"dir", b.dir.Path, "refresh", b.spec.Refresh, "max_staleness", b.spec.MaxStaleness, "wipe_on_exit", b.spec.WipeOnExit)
	if b.opts.ExitWhen != "" {
		go b.watchExit(ctx, cancel)
	}
	if err := b.Cycle(ctx, true); err != nil && ctx.Err() == nil {
		b.log.Error("first delivery incomplete; retrying with backoff (not ready)", "err", err)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		all := false
		if wait := b.untilNext(); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
			case <-timer.C:
			case <-b.poke:
				all = true
				b.log.Info("refreshing every secret now (SIGHUP)")
			}
			if ctx.Err() != nil {
				break
			}
		}
		if err := b.Cycle(ctx, all); err != nil && ctx.Err() == nil {
			b.log.Debug("refresh cycle had failures", "err", err)
		}
	}
	return b.shutdown()
}

// RefreshNow makes Run re-read every secret at once (the broker's SIGHUP).
func (b *Broker) RefreshNow() {
	select {
	case b.poke <- struct{}{}:
	default:
	}
}

func (b *Broker) watchExit(ctx context.Context, cancel func()) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := os.Stat(b.opts.ExitWhen); err == nil {
				b.log.Info("exit sentinel appeared; stopping", "file", b.opts.ExitWhen)
				cancel()
				return
			}
		}
	}
}

func (b *Broker) shutdown() error {
	defer b.dir.Close()
	if !b.spec.WipeOnExit {
		b.log.Info("stopping; secret files stay in place (wipe_on_exit is off)", "dir", b.dir.Path)
		return nil
	}
	var errs []error
	b.run.Release()
	if err := b.dir.Wipe(); err != nil {
		errs = append(errs, err)
		b.log.Error("cannot remove secret files", "err", err)
	}
	b.log.Info("stopping; secret files overwritten and removed (wipe_on_exit)", "dir", b.dir.Path)
	return cli.Exit(cli.ExitDir, errors.Join(errs...))
}

func (b *Broker) untilNext() time.Duration {
	b.work.Lock()
	defer b.work.Unlock()
	var first time.Time
	for _, it := range b.items {
		if first.IsZero() || it.next.Before(first) {
			first = it.next
		}
	}
	if first.IsZero() {
		return b.spec.Refresh
	}
	return first.Sub(b.now())
}

// Cycle fetches the references that are due (all of them when all is set,
// or when templates need every value), writes each file whose digest
// changed, and tells the app about replaced files. It returns what failed.
func (b *Broker) Cycle(ctx context.Context, all bool) error {
	now := b.now()
	coalesce := min(time.Second, b.spec.Refresh/10)
	b.work.Lock()
	defer b.work.Unlock()
	defer b.publish()
	var due []*item
	for _, it := range b.items {
		if all || len(b.spec.Templates) > 0 || !it.next.After(now.Add(coalesce)) {
			due = append(due, it)
		}
	}
	if !all && len(b.spec.Templates) == 0 {
		due = b.renewLeases(ctx, due)
	}
	if len(due) == 0 && b.delivered {
		return nil
	}
	var secrets []spec.Secret
	for _, it := range due {
		secrets = append(secrets, it.secrets...)
	}
	rep, err := b.run.Deliver(ctx, pipeline.Delivery{
		Mode: pipeline.Broker, Dir: b.dir, Due: secrets, Files: b.files, Open: b.open,
		// An optional secret is skipped until it has been delivered; after
		// that, not found upstream is a fault (the last good file stays).
		MaySkip: func(s spec.Secret) bool { it := b.owner[s.Name]; return it.lastSuccess.IsZero() || it.skipped },
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	now = b.now()
	jit := 1 + b.opts.Jitter*(2*rand.Float64()-1)

	var replaced []string
	for _, f := range rep.Files {
		if f.Err != nil {
			b.m.errors.WithLabelValues("tmpfs", "write").Inc()
			continue
		}
		b.m.changes.WithLabelValues(f.Name).Inc()
		b.m.bytes.Add(float64(f.Bytes))
		if f.Replaced {
			replaced = append(replaced, f.Name)
		}
	}
	outs := rep.Outcomes
	for _, it := range due {
		b.settle(it, outs[:len(it.secrets)], now, jit)
		outs = outs[len(it.secrets):]
	}
	b.m.cycles.Inc()
	if !b.delivered && b.complete() && err == nil {
		if err := b.dir.WriteMarker(tmpfs.ReadyMarker, []byte(now.UTC().Format(time.RFC3339)+"\n")); err != nil {
			b.log.Error("cannot write the readiness marker", "err", err)
			return cli.Exit(cli.ExitDir, err)
		}
		b.delivered = true
		b.publish() // ready before the handoff, which may wait on the network
		b.log.Info("secrets delivered", "count", len(b.spec.Secrets)+len(b.spec.Templates), "dir", b.dir.Path)
		if !b.opts.Once && !b.kept {
			b.kept = true
			if err := b.run.Handoff(ctx, true); err != nil {
				b.log.Warn("provider handoff failed", "err", err)
			}
			b.run.Keep(ctx)
		}
	}
	if len(replaced) > 0 {
		sort.Strings(replaced)
		b.log.Info("secret files replaced", "files", strings.Join(replaced, ","))
		if !b.opts.Once {
			go b.notify.Notify(context.WithoutCancel(ctx), replaced)
		}
	}
	return err
}

// settle updates one reference's schedule from its secrets' outcomes: all
// skipped (optional, not found), a failed fetch (backoff, see fault), a
// value not delivered (backoff), or delivered (next read due).
func (b *Broker) settle(it *item, outs []pipeline.Outcome, now time.Time, jit float64) {
	skipped := true
	var fetchErr error
	delivered := true
	for _, o := range outs {
		skipped = skipped && o.Skipped
		switch {
		case o.Err != nil && !o.Undelivered:
			fetchErr = o.Err
		case o.Err != nil:
			delivered = false
		}
	}
	switch {
	case skipped:
		if !it.skipped {
			b.log.Info("optional secret not found; skipped", "ref", it.ref.Raw)
		}
		it.skipped = true
		it.failures, it.lastErr = 0, ""
		it.lastSuccess = now
		b.schedule(it, now, jit)
		return
	case fetchErr != nil:
		b.fault(it, fetchErr, now)
		return
	}
	it.skipped = false
	if it.missing {
		b.log.Warn("secret is back upstream", "ref", it.ref.Raw)
		it.missing = false
	}
	if !delivered {
		it.failures++
		it.lastErr = "cannot deliver"
		it.next = now.Add(b.backoff(it.failures))
		return
	}
	got := outs[0].Got
	it.failures, it.lastErr = 0, ""
	it.lastSuccess = now
	it.fetchedAt = now
	it.leaseTTL = got.LeaseTTL
	it.leaseID, it.renewable = got.LeaseID, got.Renewable
	b.schedule(it, now, jit)
}

// fault records a failed fetch: the last good file stays, the reference
// backs off, and a secret gone upstream is removed only once it is older
// than max_staleness.
func (b *Broker) fault(it *item, err error, now time.Time) {
	kind := providers.KindOf(err)
	b.m.errors.WithLabelValues(it.ref.Scheme, strings.ReplaceAll(kind.String(), " ", "_")).Inc()
	it.failures++
	it.lastErr = kind.String()
	it.next = now.Add(b.backoff(it.failures))
	names := secretNames(it)
	switch {
	case it.lastSuccess.IsZero():
		b.log.Warn("cannot fetch secret", "secrets", names, "err", err, "retry_in", it.next.Sub(now).Round(time.Millisecond))
	case kind == providers.KindNotFound:
		age := now.Sub(it.lastSuccess)
		if age > b.spec.MaxStaleness {
			for _, sec := range it.secrets {
				b.files.Remove(b.dir, sec.Name)
			}
			b.log.Error("SECRET DELETED UPSTREAM: older than max_staleness, its file is removed", "secrets", names, "ref", it.ref.Raw, "max_staleness", b.spec.MaxStaleness)
		} else {
			it.missing = true
			b.log.Error("SECRET DELETED UPSTREAM: keeping the last good file until max_staleness", "secrets", names, "ref", it.ref.Raw, "stale_for", age.Round(time.Second), "max_staleness", b.spec.MaxStaleness)
		}
	default:
		b.log.Warn("refresh failed; the last good file stays", "secrets", names, "err", err, "stale_for", now.Sub(it.lastSuccess).Round(time.Second), "retry_in", it.next.Sub(now).Round(time.Millisecond))
	}
}

func secretNames(it *item) string {
	n := make([]string, len(it.secrets))
	for i, s := range it.secrets {
		n[i] = s.Name
	}
	return strings.Join(n, ",")
}

// renewLeases renews the due items that hold a renewable lease, when their
// provider can (providers.LeaseRenewer): the credential and its file stay
// as they are, and the next renewal is due at 2/3 of the new TTL. It returns
// the items that must be re-read: those without a lease, and those whose
// renewal failed or no longer extends the lease (its max TTL is near).
func (b *Broker) renewLeases(ctx context.Context, due []*item) []*item {
	var reread []*item
	for _, it := range due {
		id, renewable, expires := it.leaseID, it.renewable, it.fetchedAt.Add(it.leaseTTL)
		if id == "" || !renewable {
			reread = append(reread, it)
			continue
		}
		p, err := b.provider(ctx, it.ref.Scheme)
		r, ok := p.(providers.LeaseRenewer)
		if err != nil || !ok {
			reread = append(reread, it)
			continue
		}
		ttl, err := r.RenewLease(ctx, id)
		now := b.now()
		if err != nil || !now.Add(ttl).After(expires.Add(time.Second)) {
			reason := "it reaches its max TTL"
			if err != nil {
				reason = "renewal failed: " + err.Error()
			}
			b.log.Info("lease not extended; re-reading the secret", "ref", it.ref.Raw, "why", reason)
			reread = append(reread, it)
			continue
		}
		it.leaseTTL, it.fetchedAt = ttl, now
		it.lastSuccess = now
		it.next = now.Add(ttl * 2 / 3)
		b.log.Debug("lease renewed", "ref", it.ref.Raw, "ttl", ttl.String())
	}
	return reread
}

// schedule sets the next read: refresh with the cycle's jitter, or sooner
// for a leased secret (2/3 of its TTL, so it is re-read before it expires).
func (b *Broker) schedule(it *item, now time.Time, jit float64) {
	d := time.Duration(float64(b.spec.Refresh) * jit)
	if it.leaseTTL > 0 {
		if l := it.leaseTTL * 2 / 3; l < d {
			d = l
		}
	}
	it.next = now.Add(d)
}

// backoff is 2s doubling per failure, capped at refresh, with ±20% jitter.
func (b *Broker) backoff(failures int) time.Duration {
	d := 2 * time.Second << min(failures-1, 12)
	if d > b.spec.Refresh {
		d = b.spec.Refresh
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// complete reports whether every reference has had a success.
func (b *Broker) complete() bool {
	for _, it := range b.items {
		if it.lastSuccess.IsZero() {
			return false
		}
	}
	return true
}

// Ready reports whether the first delivery is done and no secret is older
// than max_staleness; why says what is missing. It reads the published
// snapshot, so it answers while a cycle waits on a provider or the disk.
func (b *Broker) Ready() (ok bool, why string) {
	snap := b.state.Load()
	if !snap.delivered {
		var pending []string
		for _, it := range snap.items {
			if it.lastSuccess.IsZero() {
				pending = append(pending, it.names)
			}
		}
		return false, "first delivery pending: " + strings.Join(pending, ", ")
	}
	now := b.now()
	var stale []string
	for _, it := range snap.items {
		if age := now.Sub(it.lastSuccess); age > b.spec.MaxStaleness {
			stale = append(stale, fmt.Sprintf("%s (%s since the last success, %s)", it.names, age.Round(time.Second), it.lastErr))
		}
	}
	if len(stale) > 0 {
		return false, "older than max_staleness " + b.spec.MaxStaleness.String() + ": " + strings.Join(stale, ", ")
	}
	return true, "ready"
}
