package onepassword

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/1Password/connect-sdk-go/connect"
	op "github.com/1Password/connect-sdk-go/onepassword"
	"github.com/opentracing/opentracing-go"

	"github.com/secretbroker/secretbroker/providers"
)

// The Connect SDK sets up a Jaeger tracer (UDP spans to localhost, a
// sampling poller) unless a global tracer is registered; register the no-op
// one so making a client sends nothing anywhere but Connect.
var tracerOnce sync.Once

func noTracing() {
	tracerOnce.Do(func() {
		if !opentracing.IsGlobalTracerRegistered() {
			opentracing.SetGlobalTracer(opentracing.NoopTracer{})
		}
	})
}

// connectAPI is the part of the Connect SDK's client the provider uses.
type connectAPI interface {
	GetVaults() ([]op.Vault, error)
	GetVaultsByTitle(title string) ([]op.Vault, error)
	GetVaultByUUID(uuid string) (*op.Vault, error)
	GetItems(vaultQuery string) ([]op.Item, error)
	GetItemsByTitle(title, vaultQuery string) ([]op.Item, error)
	GetItemByUUID(uuid, vaultQuery string) (*op.Item, error)
	GetFileContent(file *op.File) ([]byte, error)
}

type connectProvider struct {
	s        Settings
	api      connectAPI
	log      *slog.Logger
	inFlight int // item reads in flight (the block's concurrency key)

	mu     sync.Mutex
	vaults map[string]*onceEntry[vaultID] // by lower-cased name or id, for the provider's life
	items  map[string]itemMeta            // vaultID + "\x00" + lower-cased item -> its id and title
}

// itemMeta is what Connect's item list says of an item: no field, no value.
type itemMeta struct{ id, title string }

type vaultID struct{ id, name string }

func newConnect(s Settings, env providers.Env) *connectProvider {
	noTracing()
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &connectProvider{s: s, api: connect.NewClientWithUserAgent(s.Host, s.token, "secretbroker"), log: log, inFlight: env.InFlight(),
		vaults: map[string]*onceEntry[vaultID]{}, items: map[string]itemMeta{}}
}

// onceEntry computes a value once; waiters share the result.
type onceEntry[T any] struct {
	once sync.Once
	v    T
	err  error
}

// call runs a Connect SDK call, which takes no context, so that the caller
// returns when ctx ends even if the request hangs.
func call[T any](ctx context.Context, s Settings, f func() (T, error)) (T, error) {
	type res struct {
		v   T
		err error
	}
	ch := make(chan res, 1)
	go func() {
		var r res
		r.err = withBackoff(ctx, isRateLimited, func() error {
			var err error
			r.v, err = f()
			return err
		})
		ch <- r
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, &providers.Error{Kind: providers.KindTimeout, Detail: fmt.Sprintf("Connect at %s did not answer before the deadline (--timeout)", s.Host)}
	}
}

func isRateLimited(err error) bool {
	var e *op.Error
	return errors.As(err, &e) && e.StatusCode == http.StatusTooManyRequests
}

var idRE = regexp.MustCompile(`^[a-z0-9]{26}$`)

// classify turns a Connect SDK error into a *providers.Error for ref.
func (p *connectProvider) classify(ref providers.Ref, what string, err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		out := *pe
		out.Ref = ref.Raw
		return &out
	}
	var rl *RateLimited
	if errors.As(err, &rl) {
		return &providers.Error{Ref: ref.Raw, Kind: providers.KindUnreachable, Detail: redact(rl.Error(), p.s.token)}
	}
	var ae *op.Error
	if errors.As(err, &ae) {
		msg := redact(ae.Message, p.s.token)
		switch ae.StatusCode {
		case http.StatusUnauthorized:
			return providers.Errorf(ref, providers.KindDenied, "Connect at %s refused the token from %s (401 %s); check that it is an access token of this Connect server and has not been revoked",
				p.s.Host, p.s.tokenSource, msg)
		case http.StatusForbidden:
			return providers.Errorf(ref, providers.KindDenied, "%s: the Connect token may not read it (403 %s); give the token read access to that vault", what, msg)
		case http.StatusNotFound:
			return providers.Errorf(ref, providers.KindNotFound, "%s: Connect answered 404 %s", what, msg)
		}
		if ae.StatusCode >= 500 {
			return providers.Errorf(ref, providers.KindUnreachable, "%s: Connect at %s answered %d %s; check the Connect server's logs", what, p.s.Host, ae.StatusCode, msg)
		}
		return providers.Errorf(ref, providers.KindOther, "%s: Connect answered %d %s", what, ae.StatusCode, msg)
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return providers.Errorf(ref, providers.KindUnreachable, "cannot reach Connect at %s (from %s): %s; check the address and that the server runs",
			p.s.Host, hostSource(p.s), redact(rootCause(err).Error(), p.s.token))
	}
	return providers.Errorf(ref, providers.KindOther, "%s: %s", what, redact(err.Error(), p.s.token))
}

func hostSource(s Settings) string {
	if strings.HasPrefix(s.tokenSource, "providers.") {
		return "providers.onepassword.connect.host"
	}
	return "the configuration or " + EnvConnectHost
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// Fetch resolves every reference: one vault lookup per distinct vault (once
// for the provider's life), one item read per distinct item.
func (p *connectProvider) Fetch(ctx context.Context, refs []providers.Ref) []providers.Result {
	type itemKey struct{ vault, item string }
	var imu sync.Mutex
	items := map[itemKey]*onceEntry[*op.Item]{}
	return providers.Parallel(ctx, p.inFlight, refs, func(ctx context.Context, ref providers.Ref) (providers.Secret, error) {
		vname, iname, section, field := Parts(ref)
		v, err := p.vault(ctx, ref, vname)
		if err != nil {
			return providers.Secret{}, err
		}
		if !byID(iname) {
			// The vault's name is known, the item's is as written: a
			// refused vault is not even listed.
			if err := checkConnect(ctx, ref, v.name, ""); err != nil {
				return providers.Secret{}, err
			}
		}
		// The item's id and title, from the vault's item list (no value),
		// decide before the item is read.
		meta, err := p.itemMeta(ctx, ref, v, iname)
		if err != nil {
			return providers.Secret{}, err
		}
		if err := checkConnect(ctx, ref, v.name, meta.title); err != nil {
			return providers.Secret{}, err
		}
		k := itemKey{v.id, meta.id}
		imu.Lock()
		e, ok := items[k]
		if !ok {
			e = &onceEntry[*op.Item]{}
			items[k] = e
		}
		imu.Unlock()
		e.once.Do(func() {
			e.v, e.err = p.item(ctx, ref, v, iname, meta)
			if providers.KindOf(e.err) == providers.KindNotFound {
				// Deleted or re-created since it was listed (the broker's
				// later cycles): list it again, decide again, read again.
				if meta, e.err = p.itemMeta(ctx, ref, v, iname); e.err == nil {
					if e.err = checkConnect(ctx, ref, v.name, meta.title); e.err == nil {
						e.v, e.err = p.item(ctx, ref, v, iname, meta)
					}
				}
			}
		})
		if e.err != nil {
			return providers.Secret{}, withRef(e.err, ref)
		}
		// Renamed between the list and the read: the read's title decides
		// too, and the value is not used unless it passes.
		if err := checkConnect(ctx, ref, v.name, e.v.Title); err != nil {
			return providers.Secret{}, err
		}
		val, err := p.value(ctx, ref, v, e.v, section, field)
		if err != nil {
			return providers.Secret{}, err
		}
		return providers.Secret{Value: val, Version: fmt.Sprint(e.v.Version)}, nil
	})
}

// withRef re-labels an error shared by several references with ref.
func withRef(err error, ref providers.Ref) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		out := *pe
		out.Ref = ref.Raw
		return &out
	}
	return err
}

// vault resolves a vault name or id to its id, once per provider.
func (p *connectProvider) vault(ctx context.Context, ref providers.Ref, name string) (vaultID, error) {
	key := strings.ToLower(name)
	p.mu.Lock()
	e, ok := p.vaults[key]
	if !ok {
		e = &onceEntry[vaultID]{}
		p.vaults[key] = e
	}
	p.mu.Unlock()
	e.once.Do(func() { e.v, e.err = p.lookupVault(ctx, ref, name) })
	if e.err != nil {
		// A failure is not cached: the next Fetch (broker) tries again.
		p.mu.Lock()
		if p.vaults[key] == e {
			delete(p.vaults, key)
		}
		p.mu.Unlock()
		return vaultID{}, withRef(e.err, ref)
	}
	return e.v, nil
}

func (p *connectProvider) lookupVault(ctx context.Context, ref providers.Ref, name string) (vaultID, error) {
	what := fmt.Sprintf("vault %q", name)
	if idRE.MatchString(name) {
		v, err := call(ctx, p.s, func() (*op.Vault, error) { return p.api.GetVaultByUUID(name) })
		if err == nil {
			return vaultID{v.ID, v.Name}, nil
		}
		var ae *op.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
			return vaultID{}, p.classify(ref, what, err)
		}
		// Not an id after all: a vault may be named like one.
	}
	vs, err := call(ctx, p.s, func() ([]op.Vault, error) { return p.api.GetVaultsByTitle(name) })
	if err != nil {
		return vaultID{}, p.classify(ref, what, err)
	}
	if len(vs) == 0 {
		// 1Password names are case-insensitive; Connect's filter may not be.
		all, err := call(ctx, p.s, func() ([]op.Vault, error) { return p.api.GetVaults() })
		if err != nil {
			return vaultID{}, p.classify(ref, what, err)
		}
		var names []string
		for _, v := range all {
			names = append(names, v.Name)
			if strings.EqualFold(v.Name, name) {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 {
			return vaultID{}, providers.Errorf(ref, providers.KindNotFound, "no vault %q that this Connect token can read; vaults it can read: %s", name, quoteList(names))
		}
	}
	if len(vs) > 1 {
		return vaultID{}, providers.Errorf(ref, providers.KindInvalid, "%d vaults are named %q; refer to the vault by its id", len(vs), name)
	}
	return vaultID{vs[0].ID, vs[0].Name}, nil
}

// itemMeta finds an item by id or title (case-insensitively) in the
// vault's item list, which holds no field and no value; once per provider.
func (p *connectProvider) itemMeta(ctx context.Context, ref providers.Ref, v vaultID, name string) (itemMeta, error) {
	key := v.id + "\x00" + strings.ToLower(name)
	p.mu.Lock()
	m, ok := p.items[key]
	p.mu.Unlock()
	if ok {
		return m, nil
	}
	what := fmt.Sprintf("item %q in vault %q", name, v.name)
	all, err := call(ctx, p.s, func() ([]op.Item, error) { return p.api.GetItems(v.id) })
	if err != nil {
		return itemMeta{}, p.classify(ref, what, err)
	}
	var titles []string
	var match []op.Item
	for _, it := range all {
		if byID(name) && it.ID == strings.ToLower(name) {
			// An id names one item, whatever other titles look like.
			match = []op.Item{it}
			break
		}
		titles = append(titles, it.Title)
		if strings.EqualFold(it.Title, name) {
			match = append(match, it)
		}
	}
	switch len(match) {
	case 0:
		return itemMeta{}, providers.Errorf(ref, providers.KindNotFound, "no item %q in vault %q; items there: %s", name, v.name, quoteList(titles))
	case 1:
	default:
		ids := make([]string, len(match))
		for i, it := range match {
			ids[i] = it.ID
		}
		return itemMeta{}, providers.Errorf(ref, providers.KindInvalid, "%d items in vault %q are titled %q (ids %s); refer to the item by its id", len(match), v.name, name, strings.Join(ids, ", "))
	}
	m = itemMeta{match[0].ID, match[0].Title}
	p.remember(key, m)
	return m, nil
}

// item reads the item m in full, by its id.
func (p *connectProvider) item(ctx context.Context, ref providers.Ref, v vaultID, name string, m itemMeta) (*op.Item, error) {
	it, err := call(ctx, p.s, func() (*op.Item, error) { return p.api.GetItemByUUID(m.id, v.id) })
	if err != nil {
		var ae *op.Error
		if errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound {
			// Deleted or re-created since it was listed: list again next time.
			p.mu.Lock()
			delete(p.items, v.id+"\x00"+strings.ToLower(name))
			p.mu.Unlock()
		}
		return nil, p.classify(ref, fmt.Sprintf("item %q in vault %q", name, v.name), err)
	}
	if it.ID != m.id {
		return nil, providers.Errorf(ref, providers.KindOther, "Connect answered item %s for id %s; the value is not used", it.ID, m.id)
	}
	return it, nil
}

func (p *connectProvider) remember(key string, m itemMeta) {
	p.mu.Lock()
	p.items[key] = m
	p.mu.Unlock()
}
