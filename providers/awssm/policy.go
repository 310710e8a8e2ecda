package awssm

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/secretbroker/secretbroker/providers"
)

// PolicyOptions says what the references alone cannot: the account and the
// default region a bare name lives in, and the customer-managed KMS keys
// the secrets are encrypted with.
type PolicyOptions struct {
	Region  string   // for names without ?region=; providers.aws.region or AWS_REGION
	Account string   // for names; "" gives "*" (any account) and a note
	KMSKeys []string // key ARNs; none: the secrets use aws/secretsmanager, which needs no grant
}

// IAMPolicy is an IAM policy document.
type IAMPolicy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of an IAMPolicy.
type Statement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// suffixed reports whether name ends like a complete secret ARN's: AWS
// appends "-" and six random letters and digits to every secret's name.
func suffixed(name string) bool {
	n := len(name)
	if n < 8 || name[n-7] != '-' {
		return false
	}
	for _, c := range name[n-6:] {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Policy builds the least IAM policy that lets Fetch read refs (aws-sm
// references; others are ignored), and notes for the person reading it:
//
//   - secretsmanager:GetSecretValue on the exact secret ARNs. A name becomes
//     arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME-??????, since
//     AWS appends "-" and six random characters to each secret's ARN and
//     "??????" matches exactly those (a "*" would also match NAME-other).
//   - secretsmanager:BatchGetSecretValue only when Fetch would batch: two or
//     more secrets read at their current version in one region. AWS's
//     Service Authorization Reference lists no resource type for this
//     action, so its Resource must be "*"; that grants no secret by itself,
//     because AWS also requires secretsmanager:GetSecretValue on every
//     secret the batch returns (the API reference's "Required permissions").
//   - kms:Decrypt on each customer-managed key given, only through Secrets
//     Manager in the regions used (kms:ViaService).
func Policy(refs []providers.Ref, o PolicyOptions) (IAMPolicy, []string, error) {
	var notes []string
	resources := map[string]bool{}
	currentByRegion := map[string]map[string]bool{}
	regions := map[string]bool{}
	partitions := map[string]bool{}
	anyAccount := false
	var problems []string
	for _, ref := range refs {
		if ref.Scheme != Scheme {
			continue
		}
		id := ref.Path
		var arn, region string
		if strings.HasPrefix(id, "arn:") {
			a, err := ParseARN(id)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", ref.Raw, err))
				continue
			}
			region = a.Region
			arn = id
			partitions[a.Partition] = true
			if !suffixed(a.Name) {
				arn += "-??????"
				notes = append(notes, fmt.Sprintf("%s is a partial ARN (no 6-character suffix); granted as %s", ref.Raw, arn))
			}
		} else {
			region = ref.Param("region")
			if region == "" {
				region = o.Region
			}
			if region == "" {
				problems = append(problems, fmt.Sprintf("%s: no region for this name; set providers.aws.region or AWS_REGION, add ?region=, or use the ARN", ref.Raw))
				continue
			}
			account := o.Account
			if account == "" {
				account = "*"
				anyAccount = true
			}
			part := partition(region)
			partitions[part] = true
			arn = fmt.Sprintf("arn:%s:secretsmanager:%s:%s:secret:%s-??????", part, region, account, id)
		}
		resources[arn] = true
		regions[region] = true
		stage, version := ref.Param("version-stage"), ref.Param("version-id")
		if version == "" && (stage == "" || stage == "AWSCURRENT") {
			if currentByRegion[region] == nil {
				currentByRegion[region] = map[string]bool{}
			}
			currentByRegion[region][id] = true
		}
	}
	if len(problems) > 0 {
		return IAMPolicy{}, nil, fmt.Errorf("cannot name every secret's ARN:\n  %s", strings.Join(problems, "\n  "))
	}
	if len(resources) == 0 {
		return IAMPolicy{}, nil, fmt.Errorf("the spec has no aws-sm:// reference, so it needs no AWS grant")
	}
	if anyAccount {
		notes = append(notes, "no --account given: names are granted in any account (\"*\"); pass --account ID to pin them")
	}

	pol := IAMPolicy{Version: "2012-10-17"}
	pol.Statement = append(pol.Statement, Statement{
		Sid: "ReadSecrets", Effect: "Allow",
		Action:   []string{"secretsmanager:GetSecretValue"},
		Resource: sortedKeys(resources),
	})
	batches := false
	for _, ids := range currentByRegion {
		if len(ids) > 1 {
			batches = true
		}
	}
	if batches {
		pol.Statement = append(pol.Statement, Statement{
			Sid: "BatchReadSecrets", Effect: "Allow",
			Action:   []string{"secretsmanager:BatchGetSecretValue"},
			Resource: []string{"*"},
		})
		notes = append(notes, `secretsmanager:BatchGetSecretValue has no resource-level permissions, so its Resource is "*"; it reveals no secret by itself: AWS also checks secretsmanager:GetSecretValue on every secret a batch returns. Without it inject falls back to one GetSecretValue per secret`)
	}
	if len(o.KMSKeys) > 0 {
		var via []any
		for _, r := range sortedKeys(regions) {
			via = append(via, "secretsmanager."+r+".amazonaws.com")
		}
		for _, k := range o.KMSKeys {
			if !strings.HasPrefix(k, "arn:") || !strings.Contains(k, ":kms:") {
				return IAMPolicy{}, nil, fmt.Errorf("--kms-key %q: want a KMS key ARN such as arn:aws:kms:eu-west-1:123456789012:key/ID", k)
			}
		}
		keys := append([]string(nil), o.KMSKeys...)
		sort.Strings(keys)
		pol.Statement = append(pol.Statement, Statement{
			Sid: "DecryptSecretsViaSecretsManager", Effect: "Allow",
			Action:    []string{"kms:Decrypt"},
			Resource:  keys,
			Condition: map[string]map[string]any{"StringEquals": {"kms:ViaService": via}},
		})
	} else {
		notes = append(notes, "no --kms-key given: secrets encrypted with the AWS managed key aws/secretsmanager need no KMS grant; name each customer-managed key with --kms-key")
	}
	if len(partitions) > 1 {
		notes = append(notes, "the secrets span several AWS partitions; one policy cannot be attached in more than one")
	}
	return pol, notes, nil
}

// partition is the AWS partition a region belongs to.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// JSON renders the policy as indented JSON with a trailing newline.
func (p IAMPolicy) JSON() []byte {
	b, _ := json.MarshalIndent(p, "", "  ")
	return append(b, '\n')
}
