package awssm

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/go-viper/mapstructure/v2"

	"github.com/secretbroker/secretbroker/providers"
)

// Config is the providers.aws block. Every field is optional: the SDK's
// default chain supplies what is not set here, and a value here wins over
// the SDK's variable (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_SECRETS_MANAGER).
type Config struct {
	Region   string `mapstructure:"region"`
	Profile  string `mapstructure:"profile"`  // a profile of the shared config/credentials files
	RoleARN  string `mapstructure:"role_arn"` // assumed with STS on top of the chain's credential
	Endpoint string `mapstructure:"endpoint"` // Secrets Manager endpoint URL (VPC endpoint, test server)
	// MaxAttempts bounds the SDK retryer's attempts per call (default 5);
	// the run's deadline bounds them too.
	MaxAttempts int `mapstructure:"max_attempts"`
	// KeepEnv names credential variables (of CredentialEnv) to leave in
	// the app's environment, which inject otherwise removes once it has
	// read them: for an app that calls AWS itself with the same
	// credentials. Keeping them gives the app everything the credentials
	// allow, not only what the policy allows.
	KeepEnv []string `mapstructure:"keep_env"`
}

// DecodeConfig decodes the providers.aws block, rejecting unknown keys.
func DecodeConfig(m map[string]any) (Config, error) {
	var c Config
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &c, ErrorUnused: true, WeaklyTypedInput: true})
	if err != nil {
		return c, err
	}
	if err := d.Decode(m); err != nil {
		return c, fmt.Errorf("providers.aws: %w (known keys: region, profile, role_arn, endpoint, max_attempts, keep_env)", err)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return c, fmt.Errorf("providers.aws.endpoint %q: want an http(s) URL such as https://secretsmanager.eu-west-1.amazonaws.com", c.Endpoint)
		}
	}
	if c.RoleARN != "" && !strings.HasPrefix(c.RoleARN, "arn:") {
		return c, fmt.Errorf("providers.aws.role_arn %q: want a role ARN such as arn:aws:iam::123456789012:role/app", c.RoleARN)
	}
	for _, v := range c.KeepEnv {
		if !slices.Contains(CredentialEnv, v) {
			return c, fmt.Errorf("providers.aws.keep_env: %q is not a credential variable inject removes (those are %s)", v, strings.Join(CredentialEnv, ", "))
		}
	}
	if c.MaxAttempts < 0 {
		return c, fmt.Errorf("providers.aws.max_attempts %d: want a positive number", c.MaxAttempts)
	}
	return c, nil
}

// New is the providers.Factory for aws-sm: it decodes env.Config, loads the
// SDK's configuration and builds the client. It is called only when a spec
// has an aws-sm reference, so a spec without one never loads AWS settings.
func New(ctx context.Context, env providers.Env) (providers.Provider, error) {
	c, err := DecodeConfig(env.Config)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindConfig, Detail: err.Error()}
	}
	cfg, err := LoadAWSConfig(ctx, c)
	if err != nil {
		return nil, err
	}
	client := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	})
	p := NewWithClient(client, cfg.Region, env.Logger)
	p.inFlight = env.InFlight()
	stsClient := sts.NewFromConfig(cfg)
	p.caller = func(ctx context.Context, region string) (string, error) {
		out, err := stsClient.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, func(o *sts.Options) {
			if o.Region == "" {
				o.Region = region
			}
		})
		if err != nil {
			return "", errors.New(awsMessage(err))
		}
		return aws.ToString(out.Account), nil
	}
	return p, nil
}

// LoadAWSConfig loads the SDK's configuration with c's overrides: the
// default chain, a profile, an assumed role and a retryer with backoff
// (throttling and 5xx are retried; the caller's deadline still bounds it).
func LoadAWSConfig(ctx context.Context, c Config) (aws.Config, error) {
	attempts := c.MaxAttempts
	if attempts == 0 {
		attempts = 5
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				// inject is short-lived and bounded by --timeout; the
				// client-side retry quota would only turn a throttled
				// start into a failure before the deadline.
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, &providers.Error{Kind: providers.KindConfig, Detail: "cannot load the AWS configuration (check providers.aws.profile / AWS_PROFILE and the ~/.aws files)", Err: err}
	}
	if c.RoleARN != "" {
		stsClient := sts.NewFromConfig(cfg)
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "secretbroker-inject"
		}))
	}
	return cfg, nil
}
