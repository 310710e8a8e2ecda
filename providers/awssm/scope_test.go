package awssm

import (
	"context"
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/internal/testenv/awsfake"
	"github.com/secretbroker/secretbroker/policy"
	"github.com/secretbroker/secretbroker/providers"
)

// TestRegionAccountPinned: one name, three secrets (home region and
// account, another region, another account reached through role_arn), and
// policies that pin the region or the account. A read the policies refuse
// is refused before it is sent (no GetSecretValue), and a read they allow
// returns the secret of that region and account.
func TestRegionAccountPinned(t *testing.T) {
	const other = "210987654321"
	s := fake(t)
	home := fakeValue("home")
	s.CreateString("prod/db", home)
	east := fakeValue("east")
	s.CreateStringIn("us-east-1", awsfake.Account, "prod/db", east)
	far := fakeValue("far")
	farARN := s.CreateStringIn(region, other, "prod/db", far)
	role := "arn:aws:iam::" + other + ":role/reader"

	for _, tt := range []struct {
		name   string
		policy string         // the workload's policy
		block  map[string]any // providers.aws beyond region and endpoint
		ref    string
		want   string // the value, or "" for a refusal
		sts    bool   // whether the account had to be asked
	}{
		{"name only: any region (as before)", `allow: ["aws-sm://prod/*"]`, nil, "aws-sm://prod/db?region=us-east-1", east, false},
		{"pinned region, same name in another region", `allow: ["aws-sm://prod/*?region=eu-west-1"]`, nil, "aws-sm://prod/db?region=us-east-1", "", false},
		{"pinned region, its own region", `allow: ["aws-sm://prod/*?region=eu-west-1"]`, nil, "aws-sm://prod/db", home, false},
		{"pinned region glob", `allow: ["aws-sm://prod/*?region=eu-*"]`, nil, "aws-sm://prod/db?region=us-east-1", "", false},
		{"deny pinned to a region", "allow: [\"aws-sm://**\"]\ndeny: [\"aws-sm://prod/*?region=us-*\"]", nil, "aws-sm://prod/db?region=us-east-1", "", false},
		{"deny pinned to a region, other region", "allow: [\"aws-sm://**\"]\ndeny: [\"aws-sm://prod/*?region=us-*\"]", nil, "aws-sm://prod/db", home, false},
		{"pinned account, the credentials' own", `allow: ["aws-sm://prod/*?account=123456789012"]`, nil, "aws-sm://prod/db", home, true},
		{"pinned account, a role in another account", `allow: ["aws-sm://prod/*?account=123456789012"]`, map[string]any{"role_arn": role}, "aws-sm://prod/db", "", true},
		{"pinned account, an ARN in another account", `allow: ["aws-sm://prod/*?account=123456789012&region=eu-west-1"]`, nil, "aws-sm://" + farARN, "", false},
		{"deny pinned to another account, role there", "allow: [\"aws-sm://**\"]\ndeny: [\"aws-sm://**?account=" + other + "\"]", map[string]any{"role_arn": role}, "aws-sm://prod/db", "", true},
		{"deny pinned to another account, own credentials", "allow: [\"aws-sm://**\"]\ndeny: [\"aws-sm://**?account=" + other + "\"]", nil, "aws-sm://prod/db", home, true},
		{"both pinned, the role's account allowed", `allow: ["aws-sm://prod/db?region=eu-west-1&account=` + other + `"]`, map[string]any{"role_arn": role}, "aws-sm://prod/db", far, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pol, err := policy.Parse("test.yaml", []byte(tt.policy+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			s.ResetCalls()
			p := newProvider(t, s, nil, tt.block)
			ctx := providers.WithGate(context.Background(), policy.Set{pol}.Gate)
			res := p.Fetch(ctx, refs(t, tt.ref))
			if tt.want == "" {
				if providers.KindOf(res[0].Err) != providers.KindDenied {
					t.Fatalf("%v (%v), want a denial", res[0].Err, providers.KindOf(res[0].Err))
				}
				if n := s.Calls("GetSecretValue") + s.Calls("BatchGetSecretValue"); n != 0 {
					t.Errorf("%d reads sent, want none", n)
				}
			} else {
				if res[0].Err != nil {
					t.Fatal(res[0].Err)
				}
				if string(res[0].Secret.Value.Reveal()) != tt.want {
					t.Errorf("got %d bytes, not the secret of that region and account", len(res[0].Secret.Value.Reveal()))
				}
			}
			if got := s.Calls("GetCallerIdentity") > 0; got != tt.sts {
				t.Errorf("asked STS: %v, want %v", got, tt.sts)
			}
		})
	}
}

// TestAnswerChecked: the ARN AWS answers with is judged too, so an
// account the request-time check did not know (STS unreachable is not a
// way around a pinned allow; a pinned deny still holds on the answer)
// cannot slip through.
func TestAnswerChecked(t *testing.T) {
	id := "aws-sm://prod/db?region=eu-west-1&account=210987654321"
	deny := func(got string) error {
		if got == id {
			return providers.Errorf(providers.Ref{}, providers.KindDenied, "denied")
		}
		return nil
	}
	ctx := providers.WithGate(context.Background(), deny)
	r := refs(t, "aws-sm://prod/db")[0]
	if err := checkAnswer(ctx, r, "arn:aws:secretsmanager:eu-west-1:210987654321:secret:prod/db-AbCdEf", "prod/db"); providers.KindOf(err) != providers.KindDenied {
		t.Errorf("answer from a denied account: %v", err)
	}
	if err := checkAnswer(ctx, r, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf", ""); err != nil {
		t.Errorf("answer from an allowed account: %v", err)
	}
	if err := checkAnswer(ctx, r, "arn:aws:secretsmanager:eu-west-1:1234:secret:prod/db", "prod/db"); providers.KindOf(err) != providers.KindDenied {
		t.Errorf("an ARN that does not parse: %v", err)
	}
	if err := checkAnswer(context.Background(), r, "arn:aws:secretsmanager:eu-west-1:1234:secret:prod/db", "prod/db"); err != nil {
		t.Errorf("no policy, an ARN of a test server's making: %v", err)
	}
}

// TestNoSTSFailsClosed: with no way to learn the account, a pinned allow
// refuses a name (and says why), and a policy that pins nothing needs no
// account.
func TestNoSTSFailsClosed(t *testing.T) {
	api := &countingAPI{}
	p := NewWithClient(api, "eu-west-1", nil)
	pinned, err := policy.Parse("p.yaml", []byte(`allow: ["aws-sm://**?account=123456789012"]`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	res := p.Fetch(providers.WithGate(context.Background(), policy.Set{pinned}.Gate), refs(t, "aws-sm://prod/db"))
	if providers.KindOf(res[0].Err) != providers.KindDenied || !strings.Contains(res[0].Err.Error(), "GetCallerIdentity") {
		t.Errorf("%v, want a denial that names GetCallerIdentity", res[0].Err)
	}
	if api.calls() != 0 {
		t.Errorf("%d calls, want none", api.calls())
	}
}

// TestPatternSyntax: what an aws-sm policy pattern may say, and which
// identities each matches.
func TestPatternSyntax(t *testing.T) {
	const plan = "aws-sm://prod/db?region=*&account=*"
	for _, tt := range []struct {
		pattern string
		deny    bool
		match   []string
		miss    []string
	}{
		{"prod/*", false,
			[]string{"aws-sm://prod/db", plan, "aws-sm://prod/db?region=us-east-1&account=unknown", "aws-sm://prod/db?region=eu-west-1&account=123456789012"},
			[]string{"aws-sm://prod/a/b?region=eu-west-1&account=123456789012"}},
		{"prod/*?region=eu-west-1", false,
			[]string{"aws-sm://prod/db", plan, "aws-sm://prod/db?region=eu-west-1&account=unknown"},
			[]string{"aws-sm://prod/db?region=us-east-1&account=unknown", "aws-sm://prod/db?region=eu-west-10&account=1"}},
		{"prod/*?account=123456789012&region=eu-*", false,
			[]string{plan, "aws-sm://prod/db?region=eu-west-1&account=123456789012"},
			[]string{"aws-sm://prod/db?region=eu-west-1&account=unknown", "aws-sm://prod/db?region=eu-west-1&account=210987654321", "aws-sm://prod/db?region=us-east-1&account=123456789012"}},
		{"prod/*?account=210987654321", true,
			[]string{"aws-sm://prod/db?region=eu-west-1&account=unknown", "aws-sm://prod/db?region=eu-west-1&account=210987654321"},
			[]string{plan, "aws-sm://prod/db", "aws-sm://prod/db?region=eu-west-1&account=123456789012"}},
		{"prod/*?region=us-*", true,
			[]string{"aws-sm://prod/db?region=us-east-1&account=unknown"},
			[]string{plan, "aws-sm://prod/db?region=eu-west-1&account=unknown"}},
	} {
		list := "allow"
		if tt.deny {
			list = "allow: [\"aws-sm://**\"]\ndeny"
		}
		pol, err := policy.Parse("p.yaml", []byte(list+": [\"aws-sm://"+tt.pattern+"\"]\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.pattern, err)
		}
		for _, id := range tt.match {
			if ok, _ := pol.AllowsID(id); ok == tt.deny {
				t.Errorf("%s (deny %v) does not match %s", tt.pattern, tt.deny, id)
			}
		}
		for _, id := range tt.miss {
			if ok, _ := pol.AllowsID(id); ok != tt.deny {
				t.Errorf("%s (deny %v) matches %s", tt.pattern, tt.deny, id)
			}
		}
	}
	for _, bad := range []string{
		"aws-sm://prod/*?version-stage=AWSCURRENT",
		"aws-sm://prod/*?region=eu-west-1&region=us-east-1",
		"aws-sm://prod/*?account=12345678901x",
		"aws-sm://prod/*?region=EU_WEST",
		"aws-sm://prod/*?region=",
		"aws-sm://prod/*#password",
		"aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/*",
		"aws-sm://?region=eu-west-1",
	} {
		if _, err := policy.Parse("p.yaml", []byte("allow: [\""+bad+"\"]\n")); err == nil {
			t.Errorf("pattern %s accepted", bad)
		}
	}
}
