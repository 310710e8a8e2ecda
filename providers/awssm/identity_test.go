package awssm

import (
	"errors"

	"context"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/providers"
)

func TestIdentities(t *testing.T) {
	const q = "?region=eu-west-1&account=unknown"
	const arnQ = "?region=us-east-1&account=123456789012"
	for in, want := range map[string]string{
		"prod/db": "aws-sm://prod/db" + q,
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf": "aws-sm://prod/db" + arnQ + " aws-sm://prod/db-AbCdEf" + arnQ,
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db":        "aws-sm://prod/db" + arnQ,
		"prod/db-AbCdEf": "aws-sm://prod/db-AbCdEf" + q + " aws-sm://prod/db" + q,
		"prod/db-AbCd!f": "aws-sm://prod/db-AbCd!f" + q,
	} {
		if got := strings.Join(Identities(in, "eu-west-1", UnknownAccount), " "); got != want {
			t.Errorf("Identities(%q) = %q, want %q", in, got, want)
		}
	}
}

// An ARN cannot sidestep a deny written on the name: nothing is requested.
func TestRequestIdentityARN(t *testing.T) {
	api := &countingAPI{}
	p := NewWithClient(api, "us-east-1", nil)
	deny := func(id string) error {
		if strings.HasPrefix(id, "aws-sm://prod/admin?") {
			return providers.Errorf(providers.Ref{}, providers.KindDenied, "denied")
		}
		return nil
	}
	ctx := providers.WithGate(context.Background(), deny)
	for _, raw := range []string{
		"aws-sm://prod/admin",
		"aws-sm://arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/admin-AbCdEf",
		"aws-sm://arn:aws:secretsmanager:eu-west-1:210987654321:secret:prod/admin",
		"aws-sm://prod/admin-AbCdEf",
	} {
		r, err := providers.ParseRef(raw)
		if err != nil {
			t.Fatal(err)
		}
		res := p.Fetch(ctx, []providers.Ref{r})
		if providers.KindOf(res[0].Err) != providers.KindDenied {
			t.Errorf("%s: %v, want a denial", raw, res[0].Err)
		}
	}
	if n := api.calls(); n != 0 {
		t.Errorf("%d calls to AWS, want none", n)
	}
}

// countingAPI counts calls and answers none.
type countingAPI struct{ n int }

func (c *countingAPI) calls() int { return c.n }

func (c *countingAPI) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.n++
	return nil, errors.New("no")
}

func (c *countingAPI) BatchGetSecretValue(context.Context, *secretsmanager.BatchGetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error) {
	c.n++
	return nil, errors.New("no")
}

func (c *countingAPI) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	c.n++
	return nil, errors.New("no")
}
