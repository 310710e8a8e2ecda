package vault

import (
	"context"
	"strings"

	"github.com/secretbroker/secretbroker/providers"
)

// Identity is the canonical identity of a vault:// reference: the path as
// `vault kv get` takes it (no leading "/", which ParseRef already drops)
// under its namespace, written as Vault itself addresses a namespaced path
// from the root namespace: "vault://NS/secret/app/db". A namespace the
// declaration sets (providers.vault.namespace, VAULT_NAMESPACE) is part of
// what is read, so the policies see it.
func Identity(ref providers.Ref, env providers.Env) (string, error) {
	getenv := env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	cfg, err := ParseConfig(env.Config, getenv)
	if err != nil {
		return "", err
	}
	return identityOf(cfg.Namespace, ref.Path), nil
}

func identityOf(namespace, path string) string {
	ns := strings.Trim(namespace, "/")
	if ns != "" {
		ns += "/"
	}
	return Scheme + "://" + ns + strings.TrimPrefix(path, "/")
}

// checkRequest is the request-time check: just before a read of apiPath
// (on mount m), the gate is asked about what that read is. On a KV v2
// mount Vault learnt about, the read of MOUNT/data/REL is the secret
// MOUNT/REL. Anywhere else the read is of the API path itself; and when the
// mount was not learnt from Vault (the lookup was refused, or a kv hint of
// the declaration's said so), the path may in fact be a KV v2 API path, so
// the read must also pass as each secret it could be: the path with one
// "data" or "metadata" segment removed.
func (p *Provider) checkRequest(ctx context.Context, m mountInfo, logical, apiPath string) error {
	ids := []string{identityOf(p.cfg.Namespace, logical)}
	if !(m.kind == "kv" && m.version == 2) {
		ids[0] = identityOf(p.cfg.Namespace, apiPath)
	}
	if m.guessed {
		segs := strings.Split(apiPath, "/")
		for i := 1; i < len(segs)-1; i++ {
			if segs[i] == "data" || segs[i] == "metadata" {
				alt := strings.Join(append(append([]string{}, segs[:i]...), segs[i+1:]...), "/")
				ids = append(ids, identityOf(p.cfg.Namespace, alt))
			}
		}
	}
	return providers.CheckGate(ctx, ids...)
}
