package aws

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/sivchari/kumo"

	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/awssm"
)

const region = "us-east-1"

// setup starts kumo, points the SDK's chain at it with static test
// credentials (no IMDS, no shared files) and returns a raw client for
// seeding plus the provider built by the real factory.
func setup(t *testing.T, logTo *bytes.Buffer) (*secretsmanager.Client, providers.Provider) {
	t.Helper()
	srv := kumo.NewServer()
	t.Cleanup(srv.Close)
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "", "AWS_PROFILE": "",
	} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	cfg, err := awssm.LoadAWSConfig(ctx, awssm.Config{Region: region})
	if err != nil {
		t.Fatal(err)
	}
	seed := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = awssdk.String(srv.URL) })
	log := slog.New(slog.DiscardHandler)
	if logTo != nil {
		log = slog.New(slog.NewTextHandler(logTo, nil))
	}
	p, err := awssm.New(ctx, providers.Env{Config: map[string]any{"region": region, "endpoint": srv.URL}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return seed, p
}

func create(t *testing.T, c *secretsmanager.Client, in *secretsmanager.CreateSecretInput) *secretsmanager.CreateSecretOutput {
	t.Helper()
	out, err := c.CreateSecret(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The tests parse aws-sm:// references, as a binary does once
// providers/builtin has registered the descriptor.
func init() { providers.Register(awssm.Descriptor()) }

func fetch(t *testing.T, p providers.Provider, raws ...string) []providers.Result {
	t.Helper()
	var rs []providers.Ref
	for _, s := range raws {
		r, err := providers.ParseRef(s)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return p.Fetch(context.Background(), rs)
}

func TestKumo(t *testing.T) {
	var logBuf bytes.Buffer
	c, p := setup(t, &logBuf)
	ctx := context.Background()
	db := create(t, c, &secretsmanager.CreateSecretInput{Name: awssdk.String("prod/db"), SecretString: awssdk.String(`{"password":"fake-pw","nested":{"k":"fake-n"}}`)})
	create(t, c, &secretsmanager.CreateSecretInput{Name: awssdk.String("bin"), SecretBinary: []byte{0, 1, 2, 0xfe}})
	create(t, c, &secretsmanager.CreateSecretInput{Name: awssdk.String("rot"), SecretString: awssdk.String("fake-old")})
	put, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: awssdk.String("rot"), SecretString: awssdk.String("fake-new")})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct{ ref, want string }{
		{"aws-sm://prod/db#password", "fake-pw"},
		{"aws-sm://prod/db#/nested/k", "fake-n"},
		{"aws-sm://" + awssdk.ToString(db.ARN) + "#password", "fake-pw"},
		{"aws-sm://bin", "\x00\x01\x02\xfe"},
		{"aws-sm://rot", "fake-new"},
		{"aws-sm://rot?version-stage=AWSPREVIOUS", "fake-old"},
		{"aws-sm://rot?version-id=" + awssdk.ToString(put.VersionId), "fake-new"},
	}
	var raws []string
	for _, tt := range tests {
		raws = append(raws, tt.ref)
	}
	res := fetch(t, p, raws...)
	for i, tt := range tests {
		if res[i].Err != nil {
			t.Errorf("%s: %v", tt.ref, res[i].Err)
		} else if got := string(res[i].Secret.Value.Reveal()); got != tt.want {
			t.Errorf("%s: wrong value (%d bytes)", tt.ref, len(got))
		}
	}
	// kumo v0.33.1 has no BatchGetSecretValue: the provider says so once
	// and reads each secret singly.
	if !strings.Contains(logBuf.String(), "does not implement BatchGetSecretValue") {
		t.Errorf("no fallback logged:\n%s", logBuf.String())
	}
}

func TestKumoNotFound(t *testing.T) {
	_, p := setup(t, nil)
	res := fetch(t, p, "aws-sm://nope", "aws-sm://nope2?version-stage=AWSPREVIOUS")
	for _, r := range res {
		// kumo answers 404 where AWS answers 400; the error type is the same.
		if providers.KindOf(r.Err) != providers.KindNotFound || !strings.Contains(r.Err.Error(), region) {
			t.Errorf("got %v", r.Err)
		}
	}
}
