package vault

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/secretbroker/secretbroker/providers"
)

// Descriptor is everything the rest of the program knows about vault://
// references; providers/builtin registers it.
func Descriptor() providers.Registration {
	return providers.Registration{
		Scheme:   Scheme,
		Block:    Block,
		New:      New,
		Identity: Identity,
		// Vault's API paths are relative to /v1/: a leading "/" is not
		// part of what is requested, so not of what the policy matches.
		Syntax:      providers.Syntax{Params: []string{"version"}, Key: true, TrimLead: true, Check: checkRef},
		EnvRef:      true,
		ConsumedEnv: []string{"VAULT_TOKEN"},
		Policy: &providers.PolicyHooks{
			Use:   "vault [--config FILE]",
			Short: "Print the minimal Vault ACL policy (HCL) that lets inject read the spec's vault secrets",
			Generate: func(providers.Flags) func(context.Context, providers.Env, []providers.Ref, io.Writer, io.Writer) error {
				return generate
			},
			Audit: func(ctx context.Context, env providers.Env, refs []providers.Ref, stdout, _ io.Writer) (bool, error) {
				return AuditFor(ctx, env, refs, stdout)
			},
		},
	}
}

// generate is `inject policy vault`: the minimal ACL policy for the spec's
// vault references (see PolicyFor), HCL on stdout, notes on stderr.
func generate(ctx context.Context, env providers.Env, refs []providers.Ref, stdout, stderr io.Writer) error {
	hcl, notes, err := PolicyFor(ctx, env, refs)
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(stderr, "note: "+n)
	}
	_, err = io.WriteString(stdout, hcl)
	return err
}

// checkRef checks what vault:// adds to the common grammar.
func checkRef(r *providers.Ref) *providers.RefError {
	if v, ok := r.Params["version"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			return &providers.RefError{Pos: -1, Msg: fmt.Sprintf("version must be a positive integer, got %q", v)}
		}
	}
	return nil
}
