package vault

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretbroker/secretbroker/providers"
)

// lease is a dynamic secret's lease, owned by the token that read it.
type lease struct {
	id        string
	ttl       time.Duration
	renewable bool
}

func (p *Provider) track(sec *api.Secret) {
	p.leasesMu.Lock()
	defer p.leasesMu.Unlock()
	p.leases = append(p.leases, &lease{id: sec.LeaseID, ttl: time.Duration(sec.LeaseDuration) * time.Second, renewable: sec.Renewable})
}

func (p *Provider) snapshot() []*lease {
	p.leasesMu.Lock()
	defer p.leasesMu.Unlock()
	return append([]*lease(nil), p.leases...)
}

// loginAuth is the login's auth data, or nil.
func (p *Provider) loginAuth() *api.SecretAuth {
	p.leasesMu.Lock()
	defer p.leasesMu.Unlock()
	return p.login
}

// LoggedIn reports whether the provider holds a token it obtained by
// logging in (and so owns), and that token's accessor.
func (p *Provider) LoggedIn() (bool, string) {
	p.leasesMu.Lock()
	defer p.leasesMu.Unlock()
	if p.login == nil {
		return false, ""
	}
	return true, p.login.Accessor
}

// Handoff runs just before the app starts. A login token no lease depends
// on is revoked now, so no live token outlives the fetch; a token inject
// was given is never revoked. In exec mode nobody will renew leases, so
// their coming expiry is logged as a warning.
func (p *Provider) Handoff(ctx context.Context, supervised bool) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	leases := p.snapshot()
	if len(leases) == 0 {
		return p.revokeLogin(ctx, "nothing depends on it")
	}
	if !supervised {
		shortest := leases[0].ttl
		for _, l := range leases {
			shortest = min(shortest, l.ttl)
		}
		p.log.Warn("vault: dynamic secrets will expire at their TTL: in exec mode nobody renews their leases (run with --supervise, or use the broker, to renew them)",
			"leases", len(leases), "shortest_ttl", shortest.String())
		if a := p.loginAuth(); a != nil {
			p.log.Warn("vault: the login token is left alive because the leases belong to it; the dynamic credentials end when it expires",
				"token_ttl", (time.Duration(a.LeaseDuration) * time.Second).String())
		}
	}
	return nil
}

// Keep renews every renewable lease, and the login token they belong to,
// at about 2/3 of their TTL until ctx ends or Vault will not extend them.
func (p *Provider) Keep(ctx context.Context) {
	leases := p.snapshot()
	if len(leases) == 0 {
		return
	}
	done := make(chan struct{})
	n := 0
	for _, l := range leases {
		if !l.renewable {
			p.log.Warn("vault: lease is not renewable; it expires at its TTL", "lease", l.id, "ttl", l.ttl.String())
			continue
		}
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			p.renewLoop(ctx, "lease", l.id, l.ttl, func(ctx context.Context) (time.Duration, error) {
				s, err := p.client.Sys().RenewWithContext(ctx, l.id, 0)
				if err != nil || s == nil {
					return 0, errOr(err)
				}
				return time.Duration(s.LeaseDuration) * time.Second, nil
			})
		}()
	}
	if a := p.loginAuth(); a != nil && a.Renewable {
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			p.renewLoop(ctx, "token", a.Accessor, time.Duration(a.LeaseDuration)*time.Second, func(ctx context.Context) (time.Duration, error) {
				s, err := p.client.Auth().Token().RenewSelfWithContext(ctx, 0)
				if err != nil || s == nil || s.Auth == nil {
					return 0, errOr(err)
				}
				ttl := time.Duration(s.Auth.LeaseDuration) * time.Second
				p.leasesMu.Lock()
				p.loginExpires = time.Now().Add(ttl)
				p.leasesMu.Unlock()
				return ttl, nil
			})
		}()
	}
	for range n {
		<-done
	}
}

func errOr(err error) error {
	if err == nil {
		return errors.New("empty answer")
	}
	return err
}

// renewLoop renews one lease or token at 2/3 of its TTL. It stops when ctx
// ends, when Vault no longer extends the TTL enough to be worth renewing
// (the max TTL is near), or when renewal keeps failing until expiry.
func (p *Provider) renewLoop(ctx context.Context, what, id string, ttl time.Duration, renew func(context.Context) (time.Duration, error)) {
	expires := time.Now().Add(ttl)
	for {
		wait := time.Until(expires) * 2 / 3
		if wait < 500*time.Millisecond {
			p.log.Warn("vault: "+what+" reaches its max TTL and will not be renewed further", what, id, "expires", expires.Format(time.RFC3339))
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, p.timeout)
		got, err := renew(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("vault: renewal failed; retrying before expiry", what, id, "err", cause(err), "expires", expires.Format(time.RFC3339))
			continue // next wait is 2/3 of what remains
		}
		prev := expires
		expires = time.Now().Add(got)
		p.log.Debug("vault: renewed "+what, what, id, "ttl", got.String())
		if !expires.After(prev) {
			p.log.Warn("vault: "+what+" reached its max TTL; it expires then", what, id, "expires", expires.Format(time.RFC3339))
			return
		}
	}
}

// Close revokes what the provider owns: its login token (Vault revokes the
// token's leases with it) or, for a token it was given, each lease it read
// (when that token may; otherwise they expire at their TTL).
func (p *Provider) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	p.leasesMu.Lock()
	if p.closed {
		p.leasesMu.Unlock()
		return nil
	}
	p.closed = true
	p.leasesMu.Unlock()
	if ok, _ := p.LoggedIn(); ok {
		return p.revokeLogin(ctx, "inject is done")
	}
	var errs []error
	for _, l := range p.snapshot() {
		if err := p.client.Sys().RevokeWithContext(ctx, l.id); err != nil {
			p.log.Warn("vault: cannot revoke lease; it expires at its TTL", "lease", l.id, "err", cause(err))
			errs = append(errs, &providers.Error{Ref: "vault", Kind: kindOf(ctx, err), Detail: describe(p.cfg.Address, err, "revoking lease "+l.id)})
		}
	}
	return errors.Join(errs...)
}

// revokeLogin revokes the login token, if inject logged in itself.
func (p *Provider) revokeLogin(ctx context.Context, why string) error {
	ok, accessor := p.LoggedIn()
	if !ok {
		return nil
	}
	if err := p.client.Auth().Token().RevokeSelfWithContext(ctx, ""); err != nil {
		return &providers.Error{Ref: "vault", Kind: kindOf(ctx, err), Detail: describe(p.cfg.Address, err, "revoking the login token (accessor "+accessor+")"), Err: cause(err)}
	}
	p.leasesMu.Lock()
	p.login = nil
	p.leases = nil
	p.leasesMu.Unlock()
	p.authMu.Lock()
	p.authed = false // a later Fetch (the broker's next cycle) logs in again
	p.client.ClearToken()
	p.authMu.Unlock()
	p.log.Debug("vault: revoked the login token: "+why, "accessor", accessor)
	return nil
}

var _ providers.Lifecycle = (*Provider)(nil)

// RenewLease renews one lease and returns the TTL Vault granted; the broker
// uses it (providers.LeaseRenewer) to keep a dynamic credential rather than
// replace it on every refresh.
func (p *Provider) RenewLease(ctx context.Context, leaseID string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	s, err := p.client.Sys().RenewWithContext(ctx, leaseID, 0)
	if err != nil || s == nil {
		return 0, errOr(err)
	}
	return time.Duration(s.LeaseDuration) * time.Second, nil
}
