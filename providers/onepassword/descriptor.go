package onepassword

import (
	"context"
	"io"

	"github.com/secretbroker/secretbroker/providers"
)

// Scheme and Block are the names this provider is registered under.
const (
	Scheme = "op"
	Block  = "onepassword"
)

// Descriptor is everything the rest of the program knows about op://
// references; providers/builtin registers it.
func Descriptor() providers.Registration {
	return providers.Registration{
		Scheme:   Scheme,
		Block:    Block,
		New:      New,
		Identity: Identity,
		Pattern:  Pattern,
		Syntax:   providers.Syntax{Params: []string{"attribute", "ssh-format"}, Lower: true, Check: checkRef},
		EnvRef:   true,
		// The tokens inject logs in with; OP_CONNECT_HOST is an address,
		// not a credential, and stays.
		ConsumedEnv: []string{EnvServiceAccountToken, EnvConnectToken},
		Policy: &providers.PolicyHooks{
			Use:   "onepassword",
			Short: "Print the 1Password vaults the spec reads and the access a service account or Connect token needs",
			Generate: func(providers.Flags) func(context.Context, providers.Env, []providers.Ref, io.Writer, io.Writer) error {
				return func(_ context.Context, _ providers.Env, refs []providers.Ref, stdout, _ io.Writer) error {
					return WritePolicy(stdout, refs)
				}
			},
			Audit: func(ctx context.Context, env providers.Env, refs []providers.Ref, stdout, _ io.Writer) (bool, error) {
				rep, err := Audit(ctx, env, refs)
				if err != nil {
					return false, err
				}
				return rep.Broader(), WriteAudit(stdout, rep)
			},
		},
	}
}
