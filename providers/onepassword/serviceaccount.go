package onepassword

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/secret"
)

// sdkClient is what the provider needs of 1Password's Go SDK. The real one
// (sdk.go) wraps onepassword-sdk-go; tests use a fake, so the mapping of
// references, results and errors is covered without 1Password's service.
type sdkClient interface {
	// ResolveAll resolves the references in one call, keyed by reference.
	ResolveAll(ctx context.Context, refs []string) (map[string]sdkResult, error)
	// Vaults lists the vaults the service account can read.
	Vaults(ctx context.Context) ([]named, error)
	// Items lists the items of a vault.
	Items(ctx context.Context, vaultID string) ([]named, error)
	// Item returns the names in an item: sections, fields and files.
	Item(ctx context.Context, vaultID, itemID string) (itemNames, error)
}

// sdkResult is one reference's outcome: Secret, or an error of one of the
// SDK's ResolveReferenceError types ("vaultNotFound", "fieldNotFound"...).
type sdkResult struct {
	Secret  string
	ErrType string
	ErrMsg  string
	Failed  bool
}

type named struct{ ID, Name string }

type itemNames struct {
	Sections []named
	Fields   []string // field titles
	Files    []string
}

// sdkRateLimited is the SDK refusing a call for its rate limit; Fetch backs off and retries.
type sdkRateLimited struct{ msg string }

func (e *sdkRateLimited) Error() string { return e.msg }

// newSDKClient makes the SDK's client; set by sdk.go, nil when the binary
// is built with noonepassword_sdk.
var newSDKClient func(ctx context.Context, token string) (sdkClient, error)

type serviceAccountProvider struct {
	s   Settings
	log *slog.Logger

	mu     sync.Mutex
	client sdkClient
}

func newServiceAccount(s Settings, env providers.Env) (providers.Provider, error) {
	if newSDKClient == nil {
		return nil, configErr("this binary was built without 1Password's SDK (build tag noonepassword_sdk), so service accounts are not supported; use a Connect server (%s / providers.onepassword.connect.host) or a build without the tag", EnvConnectHost)
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &serviceAccountProvider{s: s, log: log}, nil
}

// sdk makes the client on first use: compiling the SDK's WebAssembly core
// takes seconds, and only a run with op:// references should pay for it.
func (p *serviceAccountProvider) sdk(ctx context.Context) (sdkClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, nil
	}
	type res struct {
		c   sdkClient
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := newSDKClient(ctx, p.s.token)
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		p.client = r.c
		return r.c, nil
	case <-ctx.Done():
		return nil, &providers.Error{Kind: providers.KindTimeout, Detail: "1Password's SDK did not start before the deadline (--timeout); compiling its core takes a few seconds"}
	}
}

// sdkReference is the reference as sent to the SDK: 1Password's own syntax,
// with the names as the user wrote them.
func sdkReference(r providers.Ref) string {
	s := "op://" + r.Path
	sep := "?"
	for _, k := range []string{"attribute", "ssh-format"} {
		if v, ok := r.Params[k]; ok {
			s += sep + k + "=" + v
			sep = "&"
		}
	}
	return s
}

// Fetch resolves every reference in one ResolveAll call.
func (p *serviceAccountProvider) Fetch(ctx context.Context, refs []providers.Ref) []providers.Result {
	out := make([]providers.Result, len(refs))
	// The SDK resolves names and ids itself: what the policies cannot
	// decide without knowing the name is refused before anything is sent.
	denied := make([]bool, len(refs))
	left := 0
	for i, r := range refs {
		if err := checkUnresolved(ctx, r); err != nil {
			out[i].Err, denied[i] = err, true
			continue
		}
		left++
	}
	if left == 0 {
		return out
	}
	failAll := func(err error) []providers.Result {
		for i, r := range refs {
			if !denied[i] {
				out[i].Err = withRef(p.classify(r, err), r)
			}
		}
		return out
	}
	c, err := p.sdk(ctx)
	if err != nil {
		return failAll(err)
	}
	var strs []string
	seen := map[string]bool{}
	for i, r := range refs {
		if denied[i] {
			continue
		}
		s := sdkReference(r)
		if !seen[s] {
			seen[s] = true
			strs = append(strs, s)
		}
	}
	var res map[string]sdkResult
	err = withBackoff(ctx, func(err error) bool { var rl *sdkRateLimited; return errors.As(err, &rl) }, func() error {
		var err error
		res, err = c.ResolveAll(ctx, strs)
		return err
	})
	if err != nil {
		return failAll(err)
	}
	lists := &listCache{sdkClient: c, items: map[string]listResult{}}
	for i, r := range refs {
		if denied[i] {
			continue
		}
		got, ok := res[sdkReference(r)]
		switch {
		case !ok:
			out[i].Err = providers.Errorf(r, providers.KindOther, "1Password's SDK returned no result for this reference")
		case got.Failed:
			out[i].Err = p.refError(ctx, lists, r, got)
		default:
			out[i].Secret = providers.Secret{Value: secret.FromString(got.Secret)}
		}
	}
	return out
}

// classify maps a failure of the whole call (client setup, ResolveAll).
func (p *serviceAccountProvider) classify(ref providers.Ref, err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return err
	}
	var rl *RateLimited
	if errors.As(err, &rl) {
		return &providers.Error{Ref: ref.Raw, Kind: providers.KindUnreachable, Detail: redact(rl.Error(), p.s.token)}
	}
	msg := redact(err.Error(), p.s.token)
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "token") && (strings.Contains(low, "invalid") || strings.Contains(low, "malformed") || strings.Contains(low, "expired") ||
		strings.Contains(low, "unauthori") || strings.Contains(low, "authenticat") || strings.Contains(low, "revoked")),
		strings.Contains(low, "unauthorized") || strings.Contains(low, "authentication failed"):
		return providers.Errorf(ref, providers.KindDenied, "1Password refused the service account token from %s (%s); check that it is a current service account token (it starts with ops_) and has not been revoked", p.s.tokenSource, msg)
	case strings.Contains(low, "error sending request") || strings.Contains(low, "dns") || strings.Contains(low, "connect") && strings.Contains(low, "refused") ||
		strings.Contains(low, "network") || strings.Contains(low, "timed out"):
		return providers.Errorf(ref, providers.KindUnreachable, "cannot reach 1Password: %s; check network access to the account's 1Password host", msg)
	}
	return providers.Errorf(ref, providers.KindOther, "1Password's SDK: %s", msg)
}

// refError maps one reference's ResolveReferenceError, listing what exists
// (names only) for the not-found kinds.
func (p *serviceAccountProvider) refError(ctx context.Context, c sdkClient, ref providers.Ref, r sdkResult) error {
	vname, iname, section, field := Parts(ref)
	msg := redact(r.ErrMsg, p.s.token)
	switch r.ErrType {
	case "vaultNotFound":
		detail := fmt.Sprintf("no vault %q that this service account can read", vname)
		if vs, err := c.Vaults(ctx); err == nil {
			names := make([]string, len(vs))
			for i, v := range vs {
				names[i] = v.Name
			}
			detail += "; vaults it can read: " + quoteList(names)
		}
		return providers.Errorf(ref, providers.KindNotFound, "%s", detail)
	case "itemNotFound":
		detail := fmt.Sprintf("no item %q in vault %q", iname, vname)
		if v, ok := p.findVault(ctx, c, vname); ok {
			if its, err := c.Items(ctx, v.ID); err == nil {
				titles := make([]string, len(its))
				for i, it := range its {
					titles[i] = it.Name
				}
				detail += "; items there: " + quoteList(titles)
			}
		}
		return providers.Errorf(ref, providers.KindNotFound, "%s", detail)
	case "fieldNotFound", "noMatchingSections":
		what := fmt.Sprintf("no field or file %q in item %q", field, iname)
		if r.ErrType == "noMatchingSections" {
			what = fmt.Sprintf("no section %q in item %q", section, iname)
		}
		if names, ok := p.itemNames(ctx, c, vname, iname); ok {
			if r.ErrType == "noMatchingSections" {
				labels := make([]string, 0, len(names.Sections))
				for _, s := range names.Sections {
					if s.Name != "" {
						labels = append(labels, s.Name)
					}
				}
				what += "; sections there: " + quoteList(labels)
			} else {
				what += "; fields there: " + quoteList(names.Fields)
				if len(names.Files) > 0 {
					what += "; files: " + quoteList(names.Files)
				}
			}
		}
		return providers.Errorf(ref, providers.KindNotFound, "%s", what)
	case "tooManyVaults":
		return providers.Errorf(ref, providers.KindInvalid, "more than one vault is named %q; refer to the vault by its id", vname)
	case "tooManyItems":
		return providers.Errorf(ref, providers.KindInvalid, "more than one item in vault %q is titled %q; refer to the item by its id", vname, iname)
	case "tooManyMatchingFields":
		return providers.Errorf(ref, providers.KindInvalid, "more than one field of item %q is labelled %q; add the section or use the field's id", iname, field)
	case "incompatibleTOTPQueryParameterField":
		return providers.Errorf(ref, providers.KindInvalid, "attribute=otp needs a one-time password field, and %q is not one", field)
	case "unableToGenerateTotpCode":
		return providers.Errorf(ref, providers.KindInvalid, "1Password could not compute a one-time password from %q: %s", field, msg)
	case "sSHKeyMetadataNotFound", "incompatibleSshKeyQueryParameterField", "unableToParsePrivateKey", "unableToFormatPrivateKeyToOpenSsh":
		return providers.Errorf(ref, providers.KindInvalid, "ssh-format=openssh needs an SSH key's private key field, and %q cannot give one (%s)", field, r.ErrType)
	case "unsupportedFileFormat":
		return providers.Errorf(ref, providers.KindInvalid, "1Password's SDK reads only text file attachments, and %q is not one", field)
	case "parsing":
		return providers.Errorf(ref, providers.KindInvalid, "1Password could not parse the reference: %s", msg)
	}
	if msg == "" {
		msg = r.ErrType
	}
	return providers.Errorf(ref, providers.KindOther, "1Password: %s", msg)
}

func (p *serviceAccountProvider) findVault(ctx context.Context, c sdkClient, name string) (named, bool) {
	vs, err := c.Vaults(ctx)
	if err != nil {
		return named{}, false
	}
	for _, v := range vs {
		if strings.EqualFold(v.Name, name) || v.ID == name {
			return v, true
		}
	}
	return named{}, false
}

func (p *serviceAccountProvider) itemNames(ctx context.Context, c sdkClient, vname, iname string) (itemNames, bool) {
	v, ok := p.findVault(ctx, c, vname)
	if !ok {
		return itemNames{}, false
	}
	its, err := c.Items(ctx, v.ID)
	if err != nil {
		return itemNames{}, false
	}
	for _, it := range its {
		if strings.EqualFold(it.Name, iname) || it.ID == iname {
			n, err := c.Item(ctx, v.ID, it.ID)
			return n, err == nil
		}
	}
	return itemNames{}, false
}

// listCache remembers, for one Fetch, the vault and item lists fetched to
// explain failures, so ten failing references cost one listing, not ten
// (service accounts are rate-limited).
type listCache struct {
	sdkClient
	vaults *listResult
	items  map[string]listResult
}

type listResult struct {
	names []named
	err   error
}

func (l *listCache) Vaults(ctx context.Context) ([]named, error) {
	if l.vaults == nil {
		n, err := l.sdkClient.Vaults(ctx)
		l.vaults = &listResult{n, err}
	}
	return l.vaults.names, l.vaults.err
}

func (l *listCache) Items(ctx context.Context, vaultID string) ([]named, error) {
	r, ok := l.items[vaultID]
	if !ok {
		r.names, r.err = l.sdkClient.Items(ctx, vaultID)
		l.items[vaultID] = r
	}
	return r.names, r.err
}
