// Package vault is the HashiCorp Vault provider: vault://PATH[?version=N][#KEY].
//
// PATH is what `vault kv get` takes on a KV mount (secret/app/db; KV v2 is
// detected through sys/internal/ui/mounts/PATH, as the vault CLI does, and
// read at secret/data/app/db) and what `vault read` takes on any other mount
// (database/creds/app: a dynamic secret whose lease is kept with the value).
// Each distinct PATH and version is read once, however many keys are taken
// from it, with a bounded number of reads in flight.
package vault

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/hashicorp/vault/api"

	"github.com/secretbroker/secretbroker/identity"
	"github.com/secretbroker/secretbroker/providers"
)

// Provider reads secrets from one Vault.
type Provider struct {
	cfg     Config
	client  *api.Client // carries the token in use
	log     *slog.Logger
	getenv  func(string) string
	user    *identity.Identity // --user: credential files must be readable by it
	timeout time.Duration      // bounds calls made outside Fetch (revoke, renew)
	// inFlight bounds the reads one Fetch has in flight (the block's
	// concurrency key).
	inFlight int

	authMu sync.Mutex
	authed bool // a token is set and, if a login's, still usable
	// login is the token inject obtained by logging in (nil for a token it
	// was given); only such a token is ever revoked. loginExpires is when
	// it expires, pushed back by renewals. Both under leasesMu.
	login        *api.SecretAuth
	loginExpires time.Time

	mountsMu sync.Mutex
	mounts   []mountInfo // learnt so far, one entry per mount

	policiesOnce sync.Once
	policies     string

	leasesMu sync.Mutex
	leases   []*lease
	closed   bool
}

type mountInfo struct {
	path    string // "secret/" as Vault prints it
	kind    string // "kv", "database", ...
	version int    // 1 or 2 for kv, 0 otherwise
	unknown string // when the mount could not be learnt: why
	guessed bool   // not learnt from Vault (lookup refused, or a kv hint)
}

// New is the providers.Factory for the vault scheme.
func New(ctx context.Context, env providers.Env) (providers.Provider, error) {
	cfg, err := ParseConfig(env.Config, env.Getenv)
	if err != nil {
		return nil, &providers.Error{Ref: "providers.vault", Kind: providers.KindConfig, Err: err}
	}
	p, err := NewWithConfig(cfg, env)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// NewWithConfig builds a provider from a parsed Config. It makes no
// network call: login happens on the first Fetch.
func NewWithConfig(cfg Config, env providers.Env) (*Provider, error) {
	getenv := env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, err := newClient(cfg, env.Timeout)
	if err != nil {
		return nil, &providers.Error{Ref: "providers.vault", Kind: providers.KindConfig, Err: err}
	}
	timeout := env.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &Provider{cfg: cfg, client: client, log: log, getenv: getenv, user: env.User, timeout: timeout, inFlight: env.InFlight()}, nil
}

// newClient builds an API client from cfg alone: unlike api.DefaultConfig
// it reads no variable behind the caller's back, so what Config says is
// what is used.
func newClient(cfg Config, timeout time.Duration) (*api.Client, error) {
	if cfg.Address == "" {
		return nil, errors.New("no Vault address: set providers.vault.address or VAULT_ADDR")
	}
	hc := cleanhttp.DefaultPooledClient()
	tr := hc.Transport.(*http.Transport)
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	retries := 2
	if cfg.MaxRetries != nil {
		retries = max(*cfg.MaxRetries, 0)
	}
	ac := &api.Config{
		Address:      cfg.Address,
		HttpClient:   hc,
		MinRetryWait: 250 * time.Millisecond,
		MaxRetryWait: 2 * time.Second,
		MaxRetries:   retries,
		Backoff:      retryablehttp.LinearJitterBackoff,
		Timeout:      timeout,
	}
	if err := ac.ConfigureTLS(&api.TLSConfig{
		CACert: cfg.CAFile, CAPath: cfg.CAPath, ClientCert: cfg.ClientCert, ClientKey: cfg.ClientKey,
		TLSServerName: cfg.ServerName,
	}); err != nil {
		return nil, fmt.Errorf("TLS settings: %w", err)
	}
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, err
	}
	// NewClient reads VAULT_TOKEN and VAULT_NAMESPACE itself; the token is
	// chosen by the auth step and the namespace by Config.
	c.ClearToken()
	c.ClearNamespace()
	if cfg.Namespace != "" {
		c.SetNamespace(cfg.Namespace)
	}
	return c, nil
}

// Client returns the API client, authenticated once Fetch or Authenticate
// has run.
func (p *Provider) Client() *api.Client { return p.client }

// read is one Vault read: a distinct PATH and version.
type read struct {
	path    string // as in the reference
	version string
	refs    []int // indexes into Fetch's refs

	apiPath string
	sec     *api.Secret
	data    any
	err     error
}

// Fetch logs in if needed, then reads each distinct PATH (and version) once.
func (p *Provider) Fetch(ctx context.Context, refs []providers.Ref) []providers.Result {
	out := make([]providers.Result, len(refs))
	if err := p.Authenticate(ctx); err != nil {
		for i, r := range refs {
			out[i].Err = withRef(r, err)
		}
		return out
	}

	byKey := map[string]*read{}
	var reads []*read
	for i, r := range refs {
		k := r.Path + "?" + r.Param("version")
		rd, ok := byKey[k]
		if !ok {
			rd = &read{path: r.Path, version: r.Param("version")}
			byKey[k] = rd
			reads = append(reads, rd)
		}
		rd.refs = append(rd.refs, i)
	}

	// One mount lookup per mount: reads are grouped by their first path
	// segment; the first read of a group looks its mount up and the rest
	// reuse it, while groups proceed in parallel.
	groups := map[string][]*read{}
	var order []string
	for _, rd := range reads {
		seg, _, _ := strings.Cut(strings.TrimPrefix(rd.path, "/"), "/")
		if _, ok := groups[seg]; !ok {
			order = append(order, seg)
		}
		groups[seg] = append(groups[seg], rd)
	}
	sem := make(chan struct{}, p.inFlight)
	var wg sync.WaitGroup
	for _, seg := range order {
		g := groups[seg]
		wg.Go(func() {
			// The group's first read resolves the mount (then cached);
			// the others start after it.
			p.limited(ctx, sem, g[0])
			var inner sync.WaitGroup
			for _, rd := range g[1:] {
				inner.Go(func() { p.limited(ctx, sem, rd) })
			}
			inner.Wait()
		})
	}
	wg.Wait()

	for _, rd := range reads {
		for _, i := range rd.refs {
			out[i] = p.result(ctx, refs[i], rd)
		}
	}
	return out
}

// limited runs do with at most cap(sem) reads in flight.
func (p *Provider) limited(ctx context.Context, sem chan struct{}, rd *read) {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		rd.err = ctx.Err()
		return
	}
	defer func() { <-sem }()
	p.do(ctx, rd)
}

// do performs one read.
func (p *Provider) do(ctx context.Context, rd *read) {
	path := strings.TrimPrefix(rd.path, "/")
	m, err := p.mountFor(ctx, path)
	if err != nil {
		rd.err = err
		return
	}
	rd.apiPath = path
	if m.path != "" && path+"/" == m.path {
		rd.err = &providers.Error{Kind: providers.KindInvalid, Detail: fmt.Sprintf("%s is the mount itself, not a secret on it; name a secret, e.g. %sapp", rd.path, m.path)}
		return
	}
	var params map[string][]string
	switch {
	case m.kind == "kv" && m.version == 2:
		rel := strings.TrimPrefix(path, m.path)
		rd.apiPath = m.path + "data/" + rel
		if rd.version != "" {
			params = map[string][]string{"version": {rd.version}}
		}
	case rd.version != "":
		what := "a plain logical path"
		if m.kind == "kv" {
			what = "a KV v1 mount"
		} else if m.kind != "" {
			what = "a " + m.kind + " mount"
		}
		rd.err = &providers.Error{Kind: providers.KindInvalid, Detail: fmt.Sprintf("?version= applies to KV v2 only, and %s is on %s", rd.path, what)}
		return
	}
	if err := p.checkRequest(ctx, m, path, rd.apiPath); err != nil {
		rd.err = err
		return
	}
	sec, err := p.client.Logical().ReadWithDataWithContext(ctx, rd.apiPath, params)
	if err != nil {
		rd.err = err
		return
	}
	rd.sec = sec
	if sec == nil {
		rd.err = p.notFound(ctx, rd, m)
		return
	}
	if m.kind == "kv" && m.version == 2 {
		d, _ := sec.Data["data"].(map[string]any)
		if d == nil {
			meta, _ := sec.Data["metadata"].(map[string]any)
			state := "deleted"
			if b, _ := meta["destroyed"].(bool); b {
				state = "destroyed"
			}
			rd.err = &providers.Error{Kind: providers.KindNotFound, Detail: fmt.Sprintf("the secret at %s (%s) exists but this version is %s", rd.path, rd.apiPath, state)}
			return
		}
		rd.data = d
	} else {
		rd.data = sec.Data
		if sec.LeaseID != "" {
			p.track(sec)
		}
	}
}

func (p *Provider) notFound(ctx context.Context, rd *read, m mountInfo) error {
	switch {
	case m.kind == "kv" && m.version == 2:
		detail := fmt.Sprintf("no secret at %s (%s) on the KV v2 mount %s", rd.path, rd.apiPath, m.path)
		if rd.version != "" {
			detail = fmt.Sprintf("no version %s of the secret at %s (%s) on the KV v2 mount %s", rd.version, rd.path, rd.apiPath, m.path)
		}
		if strings.HasPrefix(rd.path, m.path+"data/") {
			detail += fmt.Sprintf("; write the path as `vault kv get` takes it: %s", m.path+strings.TrimPrefix(rd.path, m.path+"data/"))
		}
		return &providers.Error{Kind: providers.KindNotFound, Detail: detail}
	case m.kind == "kv":
		return &providers.Error{Kind: providers.KindNotFound, Detail: fmt.Sprintf("no secret at %s on the KV v1 mount %s", rd.path, m.path)}
	case m.kind != "":
		return &providers.Error{Kind: providers.KindNotFound, Detail: fmt.Sprintf("nothing at %s on the %s mount %s", rd.path, m.kind, m.path)}
	}
	return &providers.Error{Kind: providers.KindNotFound, Detail: fmt.Sprintf("nothing at %s (%s, so it was read as a plain path; if it is on a KV v2 mount, set providers.vault.kv)", rd.path, m.unknown)}
}

// lookupFailure says why sys/internal/ui/mounts gave no mount.
func lookupFailure(err error) string {
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		switch {
		case re.StatusCode == http.StatusForbidden:
			return "Vault found no mount for it, or the token may not look its mount up"
		case strings.Contains(msg, "no mount") || strings.Contains(msg, "no secret engine") || re.StatusCode == http.StatusBadRequest:
			return "Vault says no secrets engine is mounted there: " + msg
		}
		return fmt.Sprintf("its mount lookup answered HTTP %d: %s", re.StatusCode, msg)
	}
	return "its mount could not be looked up: " + err.Error()
}

// result turns one read into the result of one reference.
func (p *Provider) result(ctx context.Context, ref providers.Ref, rd *read) providers.Result {
	if rd.err != nil {
		return providers.Result{Err: p.refError(ctx, ref, rd, rd.err)}
	}
	v, err := providers.Extract(ref, rd.data)
	if err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) && rd.apiPath != "" && rd.apiPath != rd.path {
			pe.Detail += " (" + rd.apiPath + ")"
		}
		return providers.Result{Err: err}
	}
	s := providers.Secret{Value: v}
	if rd.sec != nil {
		s.LeaseID = rd.sec.LeaseID
		s.LeaseTTL = time.Duration(rd.sec.LeaseDuration) * time.Second
		s.Renewable = rd.sec.Renewable
		if meta, ok := rd.sec.Data["metadata"].(map[string]any); ok {
			if n, ok := meta["version"].(json.Number); ok {
				s.Version = n.String()
			}
		}
	}
	return providers.Result{Secret: s}
}

// refError turns an error of a read into the *providers.Error of ref.
func (p *Provider) refError(ctx context.Context, ref providers.Ref, rd *read, err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return withRef(ref, pe)
	}
	where := rd.path
	if rd.apiPath != "" && rd.apiPath != rd.path {
		where += " (" + rd.apiPath + ")"
	}
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		return &providers.Error{Ref: ref.Raw, Kind: providers.KindDenied,
			Detail: fmt.Sprintf("permission denied reading %s; the token's policies are %s; grant read on %s (see `inject policy vault`)", where, p.tokenPolicies(ctx), strings.TrimPrefix(rd.apiPathOr(), "/"))}
	}
	return &providers.Error{Ref: ref.Raw, Kind: kindOf(ctx, err), Detail: describe(p.cfg.Address, err, "reading "+where), Err: cause(err)}
}

// withRef copies err as an *providers.Error naming ref.
func withRef(ref providers.Ref, err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		c := *pe
		c.Ref = ref.Raw
		return &c
	}
	return &providers.Error{Ref: ref.Raw, Kind: providers.KindOther, Err: err}
}

func (rd *read) apiPathOr() string {
	if rd.apiPath != "" {
		return rd.apiPath
	}
	return rd.path
}

// tokenPolicies names the policies of the token in use, once, for 403s.
func (p *Provider) tokenPolicies(ctx context.Context) string {
	p.policiesOnce.Do(func() {
		p.policies = "unknown (the token may not look itself up)"
		s, err := p.client.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil || s == nil {
			return
		}
		if pol, err := s.TokenPolicies(); err == nil {
			p.policies = "[" + strings.Join(pol, ", ") + "]"
		}
	})
	return p.policies
}

// mountFor finds the mount holding path, from the cache, from Vault
// (sys/internal/ui/mounts/PATH, as the CLI does), or from the kv hints.
// A path whose mount cannot be learnt is read as a plain logical path.
func (p *Provider) mountFor(ctx context.Context, path string) (mountInfo, error) {
	p.mountsMu.Lock()
	for _, m := range p.mounts {
		if strings.HasPrefix(path+"/", m.path) {
			p.mountsMu.Unlock()
			return m, nil
		}
	}
	p.mountsMu.Unlock()

	m, err := lookupMount(ctx, p.client, path)
	if err != nil {
		if isUnreachable(ctx, err) {
			return mountInfo{}, err
		}
		if hm, ok := p.cfg.hintedMount(path); ok {
			m = hm
			m.guessed = true
		} else {
			p.log.Debug("vault: mount lookup failed; reading as a plain path", "path", path, "err", shortErr(err))
			return mountInfo{unknown: lookupFailure(err), guessed: true}, nil
		}
	}
	p.mountsMu.Lock()
	p.mounts = append(p.mounts, m)
	p.mountsMu.Unlock()
	return m, nil
}

func lookupMount(ctx context.Context, c *api.Client, path string) (mountInfo, error) {
	s, err := c.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+path)
	if err != nil {
		return mountInfo{}, err
	}
	if s == nil || s.Data == nil {
		return mountInfo{}, errors.New("no mount information")
	}
	m := mountInfo{}
	m.path, _ = s.Data["path"].(string)
	m.kind, _ = s.Data["type"].(string)
	if m.path == "" {
		return mountInfo{}, errors.New("no mount holds this path")
	}
	if !strings.HasSuffix(m.path, "/") {
		m.path += "/"
	}
	if m.kind == "kv" || m.kind == "generic" {
		m.kind = "kv"
		m.version = 1
		if opts, ok := s.Data["options"].(map[string]any); ok {
			if v, ok := opts["version"].(string); ok {
				if n, err := strconv.Atoi(v); err == nil && n == 2 {
					m.version = 2
				}
			}
		}
	}
	return m, nil
}

// kindOf classifies a transport or API error.
func kindOf(ctx context.Context, err error) providers.Kind {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return providers.KindTimeout
	}
	if notVault(err) {
		return providers.KindConfig // something answered: the address is wrong, not the network
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusForbidden:
			return providers.KindDenied
		case re.StatusCode == http.StatusNotFound:
			return providers.KindNotFound
		case re.StatusCode >= 500:
			return providers.KindUnreachable
		case re.StatusCode == http.StatusBadRequest:
			return providers.KindInvalid
		}
		return providers.KindOther
	}
	return providers.KindUnreachable
}

func isUnreachable(ctx context.Context, err error) bool {
	k := kindOf(ctx, err)
	return k == providers.KindUnreachable || k == providers.KindTimeout
}

// describe says in words what went wrong talking to Vault.
func describe(addr string, err error, doing string) string {
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		switch {
		case strings.Contains(msg, "Vault is sealed"):
			return fmt.Sprintf("Vault at %s is sealed (HTTP %d while %s); unseal it (vault operator unseal) and retry", addr, re.StatusCode, doing)
		case re.StatusCode >= 500:
			return fmt.Sprintf("Vault at %s answered HTTP %d while %s, after retries: %s", addr, re.StatusCode, doing, msg)
		}
		return fmt.Sprintf("Vault answered HTTP %d while %s: %s", re.StatusCode, doing, msg)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("Vault at %s did not answer before the deadline (--timeout) while %s", addr, doing)
	}
	if notVault(err) {
		return fmt.Sprintf("%s answers, but not like Vault (a reply that is not Vault's JSON) while %s: check VAULT_ADDR or providers.vault.address names the Vault server (scheme, host and port, no path)", addr, doing)
	}
	return fmt.Sprintf("cannot reach Vault at %s while %s (check VAULT_ADDR, the network and the CA file)", addr, doing)
}

// cause strips the API's multi-line error down to something that fits in
// one line; response errors are fully described by describe.
func cause(err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) || notVault(err) {
		return nil
	}
	return err
}

// notVault is true when a server answered with a body that is not Vault's
// JSON (a web page, a proxy's HTML 404): VAULT_ADDR names the wrong
// server. It is no network failure, and retrying will not help.
func notVault(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te)
}

// Authenticate sets the token: the one given (token_file, re-read each
// time so a rotated file is followed; else VAULT_TOKEN) or one obtained by
// logging in with the configured method. A login is reused until it was
// revoked (Handoff) or is about to expire, then done again: the broker
// fetches through the same provider for as long as it runs. A failure is
// not cached; the next Fetch tries again.
func (p *Provider) Authenticate(ctx context.Context) error {
	p.authMu.Lock()
	defer p.authMu.Unlock()
	if p.authed && p.cfg.Auth.Method != MethodToken && p.cfg.Auth.Method != "" {
		p.leasesMu.Lock()
		fresh := p.login != nil && time.Until(p.loginExpires) > 10*time.Second
		p.leasesMu.Unlock()
		if fresh {
			return nil
		}
	}
	if err := p.authenticate(ctx); err != nil {
		return err
	}
	p.authed = true
	return nil
}

var _ providers.Provider = (*Provider)(nil)
