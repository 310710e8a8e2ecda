package awssm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/secretbroker/secretbroker/providers"
)

// AuditAPI is what Audit calls on Secrets Manager.
type AuditAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
}

// IdentityAPI is what Audit calls on STS.
type IdentityAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// AuditNote is printed with every audit: what the probes can and cannot tell.
const AuditNote = "AWS has no cheap, side-effect-free way to ask what a credential may do (iam:SimulatePrincipalPolicy needs IAM rights the workload should not have and ignores resource policies, SCPs and session policies), so this audit probes: it can show that the credential is broader than the spec, never prove it minimal (it does not try writes). Each probe is a GetSecretValue on a random name that does not exist, or a ListSecrets; none can return a secret value, and CloudTrail records them."

// NewAudit builds the clients for Audit from a provider Env, as New does.
func NewAudit(ctx context.Context, env providers.Env) (AuditAPI, IdentityAPI, string, error) {
	c, err := DecodeConfig(env.Config)
	if err != nil {
		return nil, nil, "", &providers.Error{Kind: providers.KindConfig, Detail: err.Error()}
	}
	cfg, err := LoadAWSConfig(ctx, c)
	if err != nil {
		return nil, nil, "", err
	}
	sm := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	})
	return sm, sts.NewFromConfig(cfg), cfg.Region, nil
}

// Audit compares the live credential with what refs need and writes one
// line per finding to stdout (notes to stderr). broader is true when a
// probe shows the credential may do more than the spec needs:
//
//   - GetSecretValue on a random name that does not exist, beside each
//     secret the spec names (same region, same path prefix): AWS authorises
//     before it looks the secret up, so "not found" means the grant covers
//     names the spec does not list (a wildcard), while "denied" is right;
//   - ListSecrets, which inject never needs.
//
// An error means the audit could not run (no credential: exit 69).
func Audit(ctx context.Context, sm AuditAPI, id IdentityAPI, refs []providers.Ref, defaultRegion string, stdout, stderr io.Writer) (bool, error) {
	fmt.Fprintln(stderr, "note: "+AuditNote)
	who, err := id.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return false, fmt.Errorf("no usable AWS credential (sts:GetCallerIdentity failed; check the SDK's chain, providers.aws.profile and role_arn): %s", awsMessage(err))
	}
	fmt.Fprintf(stdout, "aws-sm: credential %s (account %s)\n", aws.ToString(who.Arn), aws.ToString(who.Account))

	type probe struct{ region, prefix string }
	probes := map[probe]bool{}
	for _, ref := range refs {
		if ref.Scheme != Scheme {
			continue
		}
		name, region := ref.Path, ref.Param("region")
		if strings.HasPrefix(name, "arn:") {
			a, err := ParseARN(name)
			if err != nil {
				continue
			}
			name, region = a.Name, a.Region
			if suffixed(name) {
				name = name[:len(name)-7]
			}
		}
		if region == "" {
			region = defaultRegion
		}
		if region == "" {
			continue
		}
		prefix := ""
		if dir := path.Dir(name); dir != "." && dir != "/" {
			prefix = dir + "/"
		}
		probes[probe{region, prefix}] = true
	}
	if len(probes) == 0 {
		return false, fmt.Errorf("the spec has no aws-sm:// reference with a region to audit")
	}
	keys := make([]probe, 0, len(probes))
	for p := range probes {
		keys = append(keys, p)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].region+keys[i].prefix < keys[j].region+keys[j].prefix })

	broader := false
	regions := map[string]bool{}
	for _, p := range keys {
		regions[p.region] = true
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		name := p.prefix + "secretbroker-audit-probe-" + hex.EncodeToString(b)
		_, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)}, regionOpt(p.region))
		switch c := code(err); {
		case err == nil:
			// A random name that exists: impossible in practice; say so.
			fmt.Fprintf(stdout, "aws-sm: inconclusive: the probe secret %q exists in %s\n", name, p.region)
		case c == "ResourceNotFoundException":
			broader = true
			fmt.Fprintf(stdout, "aws-sm: BROADER: may call secretsmanager:GetSecretValue on secrets the spec does not name (%s* in %s): a name that does not exist was answered \"not found\", not \"denied\"; grant the exact ARNs (`inject policy aws`)\n", p.prefix, p.region)
		case c == "AccessDeniedException":
			fmt.Fprintf(stdout, "aws-sm: ok: secretsmanager:GetSecretValue is denied on other names under %q in %s\n", p.prefix, p.region)
		default:
			fmt.Fprintf(stdout, "aws-sm: inconclusive: GetSecretValue probe in %s: %s\n", p.region, awsMessage(err))
		}
	}
	for _, r := range sortedKeys(regions) {
		_, err := sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(1)}, regionOpt(r))
		switch c := code(err); {
		case err == nil:
			broader = true
			fmt.Fprintf(stdout, "aws-sm: BROADER: may call secretsmanager:ListSecrets in %s, which inject does not need\n", r)
		case c == "AccessDeniedException":
			fmt.Fprintf(stdout, "aws-sm: ok: secretsmanager:ListSecrets is denied in %s\n", r)
		default:
			fmt.Fprintf(stdout, "aws-sm: inconclusive: ListSecrets probe in %s: %s\n", r, awsMessage(err))
		}
	}
	return broader, nil
}
