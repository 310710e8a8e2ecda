package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/readgate"
)

func (p *Provider) authenticate(ctx context.Context) error {
	a := p.cfg.Auth
	if a.Method == MethodToken || a.Method == "" {
		tok, err := p.givenToken(ctx)
		if err != nil {
			return err
		}
		p.client.SetToken(tok)
		return nil
	}
	data, cleanup, err := p.loginData(ctx)
	if err != nil {
		return err
	}
	lc, err := p.client.CloneWithHeaders() // keeps the namespace header
	if err != nil {
		return err
	}
	lc.ClearToken()
	path := "auth/" + a.Mount + "/login"
	sec, err := lc.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		return &providers.Error{Kind: kindOf(ctx, err), Detail: describe(p.cfg.Address, err, fmt.Sprintf("logging in with %s at %s", a.Method, path)), Err: cause(err)}
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return &providers.Error{Kind: providers.KindOther, Detail: fmt.Sprintf("logging in at %s gave no token", path)}
	}
	p.client.SetToken(sec.Auth.ClientToken)
	p.leasesMu.Lock()
	p.login = sec.Auth
	p.loginExpires = time.Now().Add(time.Duration(sec.Auth.LeaseDuration) * time.Second)
	if sec.Auth.LeaseDuration == 0 { // a token with no TTL (root-like): never expires
		p.loginExpires = time.Now().Add(100 * 365 * 24 * time.Hour)
	}
	p.leasesMu.Unlock()
	p.log.Debug("vault: logged in", "method", a.Method, "mount", a.Mount, "policies", sec.Auth.Policies, "ttl", sec.Auth.LeaseDuration)
	if cleanup != nil {
		cleanup()
	}
	return nil
}

// givenToken is the token inject was handed: token_file, else VAULT_TOKEN.
func (p *Provider) givenToken(ctx context.Context) (string, error) {
	if f := p.cfg.Auth.TokenFile; f != "" {
		return p.readCredential(ctx, f, "providers.vault.auth.token_file")
	}
	if t := strings.TrimSpace(p.getenv("VAULT_TOKEN")); t != "" {
		return t, nil
	}
	return "", &providers.Error{Kind: providers.KindConfig, Err: errNoToken}
}

// loginData builds the body of the login request. cleanup runs after a
// successful login (remove_secret_id_file).
func (p *Provider) loginData(ctx context.Context) (map[string]any, func(), error) {
	a := p.cfg.Auth
	switch a.Method {
	case MethodAppRole:
		roleID := a.RoleID
		if a.RoleIDFile != "" {
			var err error
			if roleID, err = p.readCredential(ctx, a.RoleIDFile, "providers.vault.auth.role_id_file"); err != nil {
				return nil, nil, err
			}
		}
		data := map[string]any{"role_id": roleID}
		secretID := a.SecretID
		var cleanup func()
		if a.SecretIDFile != "" {
			var err error
			if secretID, err = p.readCredential(ctx, a.SecretIDFile, "providers.vault.auth.secret_id_file"); err != nil {
				return nil, nil, err
			}
			if a.RemoveSecretIDFile {
				cleanup = func() {
					if err := os.Remove(a.SecretIDFile); err != nil {
						p.log.Warn("vault: cannot remove the secret id file", "file", a.SecretIDFile, "err", err)
					}
				}
			}
		}
		if secretID != "" && a.SecretIDWrappingPath != "" {
			var err error
			if secretID, err = p.unwrapSecretID(ctx, secretID); err != nil {
				return nil, nil, err
			}
		}
		if secretID != "" {
			data["secret_id"] = secretID
		}
		return data, cleanup, nil
	case MethodKubernetes, MethodJWT:
		jwt, err := p.readCredential(ctx, a.JWTFile, "providers.vault.auth.jwt_file")
		if err != nil {
			return nil, nil, err
		}
		return map[string]any{"role": a.Role, "jwt": jwt}, nil, nil
	}
	return nil, nil, &providers.Error{Kind: providers.KindConfig, Detail: fmt.Sprintf("unknown auth method %q", a.Method)}
}

// unwrapSecretID checks that the wrapping token was created at the
// configured path (so a token wrapping something else is refused) and
// unwraps it. A wrapping token works once: a second unwrap fails.
func (p *Provider) unwrapSecretID(ctx context.Context, wrapping string) (string, error) {
	want := strings.Trim(p.cfg.Auth.SecretIDWrappingPath, "/")
	uc, err := p.client.CloneWithHeaders()
	if err != nil {
		return "", err
	}
	uc.ClearToken()
	info, err := uc.Logical().WriteWithContext(ctx, "sys/wrapping/lookup", map[string]any{"token": wrapping})
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == 400 {
			return "", &providers.Error{Kind: providers.KindDenied, Detail: "the wrapped secret id is not a live wrapping token (already unwrapped, expired, or not wrapped); a response-wrapped secret id works once, so a restart needs a new one"}
		}
		return "", &providers.Error{Kind: kindOf(ctx, err), Detail: describe(p.cfg.Address, err, "looking up the wrapped secret id"), Err: cause(err)}
	}
	got := ""
	if info != nil {
		got, _ = info.Data["creation_path"].(string)
	}
	if strings.Trim(got, "/") != want {
		return "", &providers.Error{Kind: providers.KindDenied, Detail: fmt.Sprintf("the wrapping token was created at %q, not at secret_id_response_wrapping_path %q; refusing to unwrap it", got, want)}
	}
	sec, err := uc.Logical().UnwrapWithContext(ctx, wrapping)
	if err != nil {
		return "", &providers.Error{Kind: kindOf(ctx, err), Detail: describe(p.cfg.Address, err, "unwrapping the secret id"), Err: cause(err)}
	}
	var id string
	if sec != nil {
		id, _ = sec.Data["secret_id"].(string)
	}
	if id == "" {
		return "", &providers.Error{Kind: providers.KindInvalid, Detail: "the unwrapped response holds no secret_id"}
	}
	return id, nil
}

// readCredential reads a one-line credential file through the read gate:
// the guardrail (ctx's file gate), --user's permissions, a regular file
// outside /proc and /sys, at most 64 KiB.
func (p *Provider) readCredential(ctx context.Context, path, key string) (string, error) {
	b, err := readgate.ReadFile(path, readgate.Options{User: p.user, Guard: providers.FileGateFrom(ctx), Max: 64 << 10, What: key})
	if err != nil {
		kind := providers.KindConfig
		var ge *readgate.Error
		if errors.As(err, &ge) && ge.Kind == readgate.KindDenied {
			kind = providers.KindDenied
		}
		return "", &providers.Error{Kind: kind, Detail: key, Err: err}
	}
	s := strings.TrimSpace(string(b))
	clear(b)
	if s == "" {
		return "", &providers.Error{Kind: providers.KindConfig, Detail: key + ": " + path + " is empty"}
	}
	return s, nil
}
