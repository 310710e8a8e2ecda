package providers

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Pool builds each scheme's provider once, on first use, and gives the same
// one to every later caller: inject's single pass and the broker's cycles
// share it. It is safe for concurrent use. Each scheme has its own lock, so
// one slow provider setup (a Vault login) holds up only callers of that
// scheme. A setup that fails is not remembered: the next call tries again.
type Pool struct {
	env func(Registration) Env

	mu    sync.Mutex // guards slots and built, never held across a setup
	slots map[string]*slot
	built map[string]Provider
}

type slot struct {
	mu sync.Mutex
	p  Provider
}

// NewPool returns a pool whose providers are built with the Env env gives
// for their registration (the spec's providers.<block> and environment).
func NewPool(env func(Registration) Env) *Pool {
	return &Pool{env: env, slots: map[string]*slot{}, built: map[string]Provider{}}
}

// Open returns the provider for scheme, building it the first time. It is
// an Opener.
func (p *Pool) Open(ctx context.Context, scheme string) (Provider, error) {
	reg, ok := Lookup(scheme)
	if !ok {
		return nil, fmt.Errorf("no %s provider in this build", scheme)
	}
	p.mu.Lock()
	s := p.slots[scheme]
	if s == nil {
		s = &slot{}
		p.slots[scheme] = s
	}
	p.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		return s.p, nil
	}
	prov, err := reg.New(ctx, p.env(reg))
	if err != nil {
		return nil, err
	}
	s.p = prov
	p.mu.Lock()
	p.built[scheme] = prov
	p.mu.Unlock()
	return prov, nil
}

// Opened lists the schemes whose provider has been built, sorted.
func (p *Pool) Opened() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.built))
	for scheme := range p.built {
		out = append(out, scheme)
	}
	sort.Strings(out)
	return out
}

// Lifecycles are the built providers that hold something alive, in scheme
// order.
func (p *Pool) Lifecycles() []Lifecycle {
	var out []Lifecycle
	for _, scheme := range p.Opened() {
		p.mu.Lock()
		prov := p.built[scheme]
		p.mu.Unlock()
		if l, ok := prov.(Lifecycle); ok {
			out = append(out, l)
		}
	}
	return out
}
