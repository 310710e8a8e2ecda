package awssm

import (
	"context"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/secretbroker/secretbroker/providers"
)

// Descriptor is everything the rest of the program knows about aws-sm://
// references; providers/builtin registers it.
func Descriptor() providers.Registration {
	return providers.Registration{
		Scheme:   Scheme,
		Block:    Block,
		New:      New,
		Identity: Identity,
		Pattern:  Pattern,
		Syntax:   providers.Syntax{Params: []string{"region", "version-id", "version-stage"}, Key: true, Check: checkRef},
		EnvRef:   true,
		// The credentials inject read are the workload's to use only
		// through inject, unless the block keeps them (keep_env) for an app
		// that talks to AWS itself. Addresses, the region, profiles and
		// file paths are no credential and stay.
		ConsumedEnv: CredentialEnv,
		KeptEnv: func(env providers.Env) []string {
			c, err := DecodeConfig(env.Config)
			if err != nil {
				return nil // New refuses the block
			}
			return c.KeepEnv
		},
		Policy: &providers.PolicyHooks{
			Use:      "aws [--config FILE] [--account ID] [--kms-key ARN]...",
			Short:    "Print the least IAM policy that lets inject read the spec's aws-sm secrets",
			Generate: policyCommand,
			Audit: func(ctx context.Context, env providers.Env, refs []providers.Ref, stdout, stderr io.Writer) (bool, error) {
				sm, id, region, err := NewAudit(ctx, env)
				if err != nil {
					return false, err
				}
				return Audit(ctx, sm, id, refs, region, stdout, stderr)
			},
		},
	}
}

// checkRef refuses a name or ARN that is not UTF-8. The SDK sends the id
// in a JSON body, where each invalid byte becomes U+FFFD, so the request
// would name another secret than the one the policy was asked about
// (found by FuzzRequestIdentity); Secrets Manager names are ASCII anyway.
func checkRef(r *providers.Ref) *providers.RefError {
	if !utf8.ValidString(r.Path) {
		return &providers.RefError{Pos: -1, Msg: "the secret's name is not valid UTF-8",
			Hint: "Secrets Manager names hold letters, digits and /_+=.@- only"}
	}
	return nil
}

// CredentialEnv are the variables the AWS SDK reads a credential from.
var CredentialEnv = []string{
	"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY",
	"AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
}

// policyCommand is `inject policy aws`: the least IAM policy for the
// spec's aws-sm references (see Policy), JSON on stdout, notes on stderr.
func policyCommand(f providers.Flags) func(context.Context, providers.Env, []providers.Ref, io.Writer, io.Writer) error {
	account := f.String("account", "", "AWS account id the named secrets live in (default: any account)")
	kmsKeys := f.StringArray("kms-key", nil, "ARN of a customer-managed KMS key the secrets are encrypted with (repeatable)")
	return func(_ context.Context, env providers.Env, refs []providers.Ref, stdout, stderr io.Writer) error {
		region, _ := env.Config["region"].(string)
		for _, v := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
			if region == "" && env.Getenv != nil {
				region = env.Getenv(v)
			}
		}
		pol, notes, err := Policy(refs, PolicyOptions{Region: region, Account: *account, KMSKeys: *kmsKeys})
		if err != nil {
			return &providers.UsageError{Err: err}
		}
		for _, n := range notes {
			fmt.Fprintln(stderr, "note: "+n)
		}
		_, err = stdout.Write(pol.JSON())
		return err
	}
}
