package awssm

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/secretbroker/secretbroker/providers"
)

// A secret is identified by its name, its region and its account:
//
//	aws-sm://NAME?region=REGION&account=ACCOUNT
//
// which is what the policies match (see Pattern). One name in two regions
// or two accounts is two secrets, and a workload chooses both through
// settings of its own (?region=, providers.aws.region, AWS_REGION, a
// profile, role_arn, its credentials), so a grant written on a name alone
// would follow it wherever those settings point.
//
// The region is the one the request is signed for and sent to (an ARN's,
// ?region=, or the client's). The account is an ARN's; a name is read in
// the account of the credentials, which inject asks STS for
// (GetCallerIdentity, which needs no permission) only when a policy's
// decision depends on it, so a workload without account-pinned patterns
// makes no extra call and needs no route to STS. Two placeholders stand
// for what is not known yet:
//
//   - AnyAccount / AnyRegion ("*"): in the plan, checked before any
//     request, when the account (a name) or region (from a profile) is
//     settled only when the provider is built. A pinned pattern neither
//     allows nor denies on it; the request-time check decides.
//   - UnknownAccount ("unknown"): at request time, before asking STS. A
//     pinned allow does not match it and a pinned deny does, so a name
//     passes without the account only when no pinned pattern concerns it.
//     When it does not pass, the name is checked with AnyAccount: refused
//     there, no account could pass it, and STS is not asked either.
//
// After the answer, the secret's ARN that AWS returned is checked as well:
// what was read, not what was asked, has the last word.
const (
	AnyAccount     = "*"
	AnyRegion      = "*"
	UnknownAccount = "unknown"
)

var (
	regionRE      = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	accountRE     = regexp.MustCompile(`^[0-9]{12}$`)
	regionGlobRE  = regexp.MustCompile(`^[a-z0-9*-]+$`)
	accountGlobRE = regexp.MustCompile(`^[0-9*]+$`)
)

// ident is the identity of NAME in region and account.
func ident(name, region, account string) string {
	return Scheme + "://" + name + "?region=" + region + "&account=" + account
}

// Identities are what a reference to id (a name, or an ARN) may read in
// region and account (an ARN's own region and account win), as the
// policies match them. An ARN is matched by the name it holds, so writing
// the ARN gives no other grant than writing the name. A name (or an ARN's
// name) ending in "-" and six letters or digits may be AWS's random suffix
// of a secret without it, which Secrets Manager then reads, so such a read
// must pass as both names. The first identity is the one a plan is checked
// on.
func Identities(id, region, account string) []string {
	name := id
	if strings.HasPrefix(id, "arn:") {
		if a, err := ParseARN(id); err == nil {
			name, region, account = a.Name, a.Region, a.Account
		}
	}
	out := []string{ident(name, region, account)}
	if base, ok := cutSuffix(name); ok {
		if strings.HasPrefix(id, "arn:") {
			// A full ARN names the secret with its suffix: plan on the name.
			out = []string{ident(base, region, account), out[0]}
		} else {
			out = append(out, ident(base, region, account))
		}
	}
	return out
}

// cutSuffix removes a trailing "-XXXXXX" (six ASCII letters or digits).
func cutSuffix(name string) (string, bool) {
	if len(name) < 8 || name[len(name)-7] != '-' {
		return "", false
	}
	for _, c := range name[len(name)-6:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return "", false
		}
	}
	return name[:len(name)-7], true
}

// Identity is the providers.Registration hook: the identity a plan is
// checked on, with the region the provider settings in env give (the
// block's region, AWS_REGION, AWS_DEFAULT_REGION, as the SDK reads them;
// AnyRegion when only a profile would say) and AnyAccount for a name.
func Identity(ref providers.Ref, env providers.Env) (string, error) {
	region := ref.Param("region")
	if region == "" {
		region, _ = env.Config["region"].(string)
	}
	for _, v := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if region == "" && env.Getenv != nil {
			region = env.Getenv(v)
		}
	}
	if region == "" {
		region = AnyRegion
	}
	return Identities(ref.Path, region, AnyAccount)[0], nil
}

// Pattern is the providers.Registration hook for aws-sm policy patterns:
//
//	aws-sm://NAME-GLOB[?region=GLOB][&account=GLOB]
//
// NAME-GLOB is a glob as for every scheme ("*" one segment, "**" any
// depth; neither matches "?", which starts the region); region and account, in either order, each at most once, pin the
// region and the account ("*" in them is any run of their characters). A
// pattern without them matches the name in every region and account, as
// patterns did before identities carried them.
func Pattern(path string, deny bool) (string, error) {
	name, query, _ := strings.Cut(path, "?")
	if strings.Contains(path, "#") {
		return "", fmt.Errorf("a grant is per secret, not per key: drop the #KEY")
	}
	if name == "" {
		return "", fmt.Errorf("want aws-sm://NAME[?region=R][&account=A]; the name is missing")
	}
	if strings.HasPrefix(name, "arn:") {
		return "", fmt.Errorf("write the secret's name and pin its region and account instead of an ARN: aws-sm://NAME?region=R&account=A")
	}
	pins := map[string]string{}
	if query != "" {
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			switch {
			case k != "region" && k != "account":
				return "", fmt.Errorf("unknown pattern parameter %q (known: region, account; a grant is per secret, not per version)", k)
			case pins[k] != "":
				return "", fmt.Errorf("%s= is given twice", k)
			case v == "":
				return "", fmt.Errorf("%s= is empty", k)
			case k == "region" && !regionGlobRE.MatchString(v):
				return "", fmt.Errorf("region=%q: want a region such as eu-west-1 (\"*\" for any run of letters, digits and \"-\")", v)
			case k == "account" && !accountGlobRE.MatchString(v):
				return "", fmt.Errorf("account=%q: want a 12-digit account id (\"*\" for any run of digits)", v)
			}
			pins[k] = v
		}
	}
	region := pinned(pins["region"], "[a-z0-9-]*")
	account := pinned(pins["account"], "[0-9]*")
	if region != "" {
		if !deny {
			// The plan's AnyRegion: the request-time check decides.
			region += "|" + regexp.QuoteMeta(AnyRegion)
		}
	}
	if account != "" {
		if deny {
			// A deny holds on an account inject does not know yet.
			account += "|" + UnknownAccount
		} else {
			account += "|" + regexp.QuoteMeta(AnyAccount)
		}
	}
	suffix := `\?region=` + group(region) + `&account=` + group(account)
	if deny && (region != "" || account != "") {
		return providers.GlobExcept(name, "?") + suffix, nil
	}
	// A bare aws-sm://NAME (a reference's Target, judged before its region
	// is known) is as AnyRegion and AnyAccount.
	return providers.GlobExcept(name, "?") + "(?:" + suffix + ")?", nil
}

// pinned is the regular expression of a region or account glob g, whose
// "*" is any run of class; "" when g pins nothing ("" or "*").
func pinned(g, class string) string {
	if g == "" || g == "*" {
		return ""
	}
	return strings.ReplaceAll(regexp.QuoteMeta(g), `\*`, class)
}

// group is re as one group, or any value ([^&]*) when re is "".
func group(re string) string {
	if re == "" {
		return "[^&]*"
	}
	return "(?:" + re + ")"
}

// checkRequest asks ctx's gate about every identity a read of ref in
// region could be: an ARN's account, or else the credentials' account,
// which it asks STS for (account) only when the decision depends on it.
func (p *Provider) checkRequest(ctx context.Context, ref providers.Ref, region string) error {
	if strings.HasPrefix(ref.Path, "arn:") {
		return withRaw(providers.CheckGate(ctx, Identities(ref.Path, region, "")...), ref)
	}
	err := providers.CheckGate(ctx, Identities(ref.Path, region, UnknownAccount)...)
	if err == nil {
		return nil
	}
	if err := providers.CheckGate(ctx, Identities(ref.Path, region, AnyAccount)...); err != nil {
		// Refused whatever the account: no need to ask it.
		return withRaw(err, ref)
	}
	acct, aerr := p.account(ctx, region)
	if aerr != nil {
		return withRaw(&providers.Error{Kind: providers.KindDenied,
			Detail: "the policy's decision depends on the account of the credentials, which inject could not learn (sts:GetCallerIdentity: " + aerr.Error() + "); name the secret by its ARN, or let STS be reached",
			Err:    err}, ref)
	}
	return withRaw(providers.CheckGate(ctx, Identities(ref.Path, region, acct)...), ref)
}

// checkAnswer asks ctx's gate about the secret AWS answered with: the
// region and account of the ARN it returned, and the name it returned
// (without a name, the ARN's, as both spellings). An answer without an ARN
// (an endpoint that is not Secrets Manager) is judged by the request
// alone.
func checkAnswer(ctx context.Context, ref providers.Ref, arn, name string) error {
	if arn == "" || providers.GateFrom(ctx) == nil {
		// No ARN, or no policy to judge it by: an AWS-compatible server
		// with ARNs of its own making still serves a run without a policy.
		return nil
	}
	a, err := ParseARN(arn)
	if err != nil {
		return providers.Errorf(ref, providers.KindDenied, "Secrets Manager answered with an ARN that does not parse (%v); the value is not used", err)
	}
	ids := Identities(arn, a.Region, a.Account)
	if name != "" {
		ids = []string{ident(name, a.Region, a.Account)}
	}
	return withRaw(providers.CheckGate(ctx, ids...), ref)
}

// withRaw labels a gate's refusal with the reference.
func withRaw(err error, ref providers.Ref) error {
	if pe, ok := err.(*providers.Error); ok {
		pe.Ref = ref.Raw
	}
	return err
}
