package providers

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Opener returns the Provider for a scheme. Resolve calls it only for schemes
// that have references, so a heavy client (1Password's SDK) is never built
// for a spec that does not use it.
type Opener func(ctx context.Context, scheme string) (Provider, error)

// Options bounds a Resolve call.
type Options struct {
	Timeout time.Duration // one deadline for the whole call; 0 means none beyond ctx
}

// Resolution maps each canonical reference to its secret or its error.
type Resolution struct {
	Secrets map[string]Secret // by Ref.Canonical()
	Errors  map[string]error  // by Ref.Canonical()
}

// Lookup returns ref's secret or its error (one canonical form computed,
// where Get and Err compute one each).
func (r Resolution) Lookup(ref Ref) (Secret, error) {
	c := ref.Canonical()
	if err := r.Errors[c]; err != nil {
		return Secret{}, err
	}
	return r.Secrets[c], nil
}

// Err returns the error for ref, or nil.
func (r Resolution) Err(ref Ref) error { return r.Errors[ref.Canonical()] }

// Get returns the secret for ref.
func (r Resolution) Get(ref Ref) (Secret, bool) {
	s, ok := r.Secrets[ref.Canonical()]
	return s, ok
}

// Resolve dedupes refs on their canonical form, groups them by scheme,
// and fetches every group concurrently under one deadline. Every reference
// ends up in exactly one of Secrets or Errors. A provider that ignores the
// deadline does not hold Resolve up: its references fail with KindTimeout.
func Resolve(ctx context.Context, refs []Ref, open Opener, opts Options) Resolution {
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}

	type group struct {
		refs  []Ref
		canon []string // each ref's canonical form, computed once
	}
	groups := map[string]*group{}
	seen := make(map[string]bool, len(refs))
	for _, r := range refs {
		c := r.Canonical()
		if seen[c] {
			continue
		}
		seen[c] = true
		g := groups[r.Scheme]
		if g == nil {
			g = &group{}
			groups[r.Scheme] = g
		}
		g.refs = append(g.refs, r)
		g.canon = append(g.canon, c)
	}

	res := Resolution{Secrets: make(map[string]Secret, len(seen)), Errors: map[string]error{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for scheme, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results := fetchGroup(ctx, scheme, g.refs, open)
			mu.Lock()
			defer mu.Unlock()
			for i, c := range g.canon {
				if results[i].Err != nil {
					res.Errors[c] = results[i].Err
				} else {
					res.Secrets[c] = results[i].Secret
				}
			}
		}()
	}
	wg.Wait()
	return res
}

func fetchGroup(ctx context.Context, scheme string, group []Ref, open Opener) []Result {
	failAll := func(kind Kind, detail string, err error) []Result {
		out := make([]Result, len(group))
		for i, r := range group {
			out[i].Err = &Error{Ref: r.Raw, Kind: kind, Detail: detail, Err: err}
		}
		return out
	}
	done := make(chan []Result, 1)
	go func() {
		p, err := open(ctx, scheme)
		if err != nil {
			done <- failAll(KindOf(err), fmt.Sprintf("cannot set up the %s provider", scheme), err)
			return
		}
		out := p.Fetch(ctx, group)
		if len(out) != len(group) {
			out = failAll(KindOther, fmt.Sprintf("%s provider returned %d results for %d references (a bug)", scheme, len(out), len(group)), nil)
		}
		done <- out
	}()
	select {
	case out := <-done:
		for i := range out {
			if out[i].Err != nil && ctx.Err() != nil && KindOf(out[i].Err) == KindOther {
				out[i].Err = &Error{Ref: group[i].Raw, Kind: KindTimeout, Detail: "the deadline (--timeout) passed", Err: out[i].Err}
			}
		}
		return out
	case <-ctx.Done():
		return failAll(KindTimeout, fmt.Sprintf("the %s provider did not answer before the deadline (--timeout)", scheme), nil)
	}
}

// Parallel runs fn for each ref with at most n in flight (the provider's
// Env.InFlight; n < 1 means DefaultConcurrency), for providers whose
// backend has no batch call.
func Parallel(ctx context.Context, n int, refs []Ref, fn func(ctx context.Context, r Ref) (Secret, error)) []Result {
	out := make([]Result, len(refs))
	if n < 1 {
		n = DefaultConcurrency
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, r := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i].Err = &Error{Ref: r.Raw, Kind: KindTimeout, Detail: "the deadline (--timeout) passed before the fetch started"}
				return
			}
			defer func() { <-sem }()
			out[i].Secret, out[i].Err = fn(ctx, r)
		}()
	}
	wg.Wait()
	return out
}
