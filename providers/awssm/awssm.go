// Package awssm is the AWS Secrets Manager provider:
//
//	aws-sm://NAME-OR-ARN[?version-stage=S&version-id=I&region=R][#KEY]
//
// An ARN sets the region. #KEY picks a top-level key of a JSON SecretString,
// #/a/b a JSON pointer; with no key a reference yields the whole
// SecretString, or the raw bytes of a SecretBinary.
//
// Fetch makes the fewest calls it can: references are deduped on
// (region, secret id, version stage, version id); references to the current
// version of two or more secrets are read with BatchGetSecretValue in groups
// of 20 (its per-secret Errors are reported per reference); pinned versions
// use GetSecretValue, a bounded number at a time. When the credential may not
// call BatchGetSecretValue, Fetch falls back to GetSecretValue per secret and
// logs why once. Throttling and 5xx answers are retried by the SDK's retryer,
// with backoff, within the caller's deadline.
//
// Credentials and region come from the SDK's default chain (environment,
// shared files and profiles, web identity, ECS/EKS container credentials,
// IMDSv2), overridable in the providers.aws block (Config). The client is
// built by New, which runs only when a spec has an aws-sm reference.
package awssm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretbroker/secretbroker/providers"
)

// Scheme and Block are the names this provider is registered under.
const (
	Scheme = "aws-sm"
	Block  = "aws"
)

// BatchSize is the most secrets one BatchGetSecretValue call may name.
const BatchSize = 20

// API is the part of the Secrets Manager client the provider uses; tests
// may wrap a real client to count calls.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	BatchGetSecretValue(ctx context.Context, in *secretsmanager.BatchGetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
}

// Provider reads AWS Secrets Manager.
type Provider struct {
	api    API
	region string // the client's default region; "" when none is configured
	log    *slog.Logger

	// inFlight bounds the reads one Fetch has in flight (the block's
	// concurrency key; 0: providers.DefaultConcurrency).
	inFlight int

	// caller asks STS for the account of the provider's credentials
	// (nil: unknown, as for a client built by NewWithClient).
	caller func(ctx context.Context, region string) (string, error)

	mu          sync.Mutex
	batchDenied bool // BatchGetSecretValue was refused once: don't ask again
	noBatchOnce sync.Once
	acct        string // the credentials' account, once learned
}

// NewWithClient returns a provider over api. region is the client's default
// region, used in messages and for references that carry none.
func NewWithClient(api API, region string, log *slog.Logger) *Provider {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{api: api, region: region, log: log}
}

// key is what references are deduped on: one read serves every #KEY.
type key struct {
	region  string
	id      string
	stage   string
	version string
}

func (k key) current() bool {
	return k.version == "" && (k.stage == "" || k.stage == "AWSCURRENT")
}

// target describes the secret a key reads, for messages.
func (k key) target() string {
	s := fmt.Sprintf("%q in %s", k.id, regionOrUnknown(k.region))
	switch {
	case k.version != "" && k.stage != "":
		s += fmt.Sprintf(" (version %s, stage %s)", k.version, k.stage)
	case k.version != "":
		s += fmt.Sprintf(" (version %s)", k.version)
	case k.stage != "" && k.stage != "AWSCURRENT":
		s += fmt.Sprintf(" (stage %s)", k.stage)
	}
	return s
}

func regionOrUnknown(r string) string {
	if r == "" {
		return "no region"
	}
	return r
}

// raw is one fetched secret version, before #KEY is applied.
type raw struct {
	arn     string // the secret's ARN and name, as AWS answered
	name    string
	str     *string
	bin     []byte
	version string
	err     *providers.Error // Ref empty: filled per reference
}

// Fetch resolves refs; see the package comment for how it batches.
func (p *Provider) Fetch(ctx context.Context, refs []providers.Ref) []providers.Result {
	out := make([]providers.Result, len(refs))
	keys := make([]key, len(refs))
	var order []key
	seen := map[key]bool{}
	for i, ref := range refs {
		k, err := p.keyOf(ref)
		if err == nil {
			// The request-time check: the name (or ARN) is asked about as
			// every secret it could read, in the region the request goes to.
			err = p.checkRequest(ctx, ref, k.region)
		}
		if err != nil {
			out[i].Err = err
			continue
		}
		keys[i] = k
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
	}

	got := p.read(ctx, order)

	for i, ref := range refs {
		if out[i].Err != nil {
			continue
		}
		r := got[keys[i]]
		if r == nil || r.err != nil {
			e := &providers.Error{Kind: providers.KindOther, Detail: "no answer for this secret (a bug)"}
			if r != nil {
				e = r.err
			}
			c := *e
			c.Ref = ref.Raw
			out[i].Err = &c
			continue
		}
		// What AWS says it read has the last word: a value whose ARN the
		// policies refuse is dropped.
		if err := checkAnswer(ctx, ref, r.arn, r.name); err != nil {
			out[i].Err = err
			continue
		}
		v, err := extract(ref, keys[i], r)
		out[i] = providers.Result{Err: err, Secret: providers.Secret{Value: v, Version: r.version}}
	}
	return out
}

// keyOf validates a reference and returns what it reads.
func (p *Provider) keyOf(ref providers.Ref) (key, error) {
	k := key{id: ref.Path, stage: ref.Param("version-stage"), version: ref.Param("version-id")}
	if k.stage == "AWSCURRENT" && k.version == "" {
		k.stage = "" // the same read as no stage: dedupe them
	}
	param := ref.Param("region")
	if strings.HasPrefix(k.id, "arn:") {
		a, err := ParseARN(k.id)
		if err != nil {
			return key{}, providers.Errorf(ref, providers.KindInvalid, "%v", err)
		}
		if param != "" && param != a.Region {
			return key{}, providers.Errorf(ref, providers.KindInvalid, "?region=%s contradicts the ARN's region %s; drop ?region=, an ARN sets the region", param, a.Region)
		}
		k.region = a.Region
	} else {
		k.region = param
		if k.region == "" {
			k.region = p.region
		}
	}
	if k.region == "" {
		return key{}, providers.Errorf(ref, providers.KindConfig, "no AWS region: set providers.aws.region or AWS_REGION, add ?region=, or use the secret's ARN")
	}
	if !regionRE.MatchString(k.region) {
		return key{}, providers.Errorf(ref, providers.KindInvalid, "region %q: want a region such as eu-west-1", k.region)
	}
	return k, nil
}

// account is the account of the provider's credentials, asked of STS the
// first time it is needed (GetCallerIdentity needs no permission), in
// region when the client has none. A failure is not remembered: the next
// Fetch (broker) asks again.
func (p *Provider) account(ctx context.Context, region string) (string, error) {
	p.mu.Lock()
	acct := p.acct
	p.mu.Unlock()
	if acct != "" {
		return acct, nil
	}
	if p.caller == nil {
		return "", errors.New("no STS client")
	}
	acct, err := p.caller(ctx, region)
	if err != nil {
		return "", err
	}
	if !accountRE.MatchString(acct) {
		return "", fmt.Errorf("STS answered account %q, not a 12-digit account id", acct)
	}
	p.mu.Lock()
	p.acct = acct
	p.mu.Unlock()
	return acct, nil
}

// read fetches every key once: batches for current versions, single reads
// for pinned ones and for whatever a batch could not answer.
func (p *Provider) read(ctx context.Context, keys []key) map[key]*raw {
	got := make(map[key]*raw, len(keys))
	var mu sync.Mutex
	put := func(k key, r *raw) {
		mu.Lock()
		got[k] = r
		mu.Unlock()
	}

	// Group current-version keys by region: a batch call goes to one region.
	byRegion := map[string][]key{}
	var regions []string
	var singles []key
	for _, k := range keys {
		if !k.current() {
			singles = append(singles, k)
			continue
		}
		if _, ok := byRegion[k.region]; !ok {
			regions = append(regions, k.region)
		}
		byRegion[k.region] = append(byRegion[k.region], k)
	}
	var batches [][]key
	for _, r := range regions {
		ks := byRegion[r]
		if len(ks) < 2 || p.noBatch() {
			singles = append(singles, ks...)
			continue
		}
		for len(ks) > 0 {
			n := min(BatchSize, len(ks))
			batches = append(batches, ks[:n])
			ks = ks[n:]
		}
	}

	var retryMu sync.Mutex
	var retry []key // batch said nothing usable about these: read singly
	jobs := make([]func(), 0, len(batches)+len(singles))
	for _, b := range batches {
		jobs = append(jobs, func() {
			left := p.batch(ctx, b, put)
			if len(left) > 0 {
				retryMu.Lock()
				retry = append(retry, left...)
				retryMu.Unlock()
			}
		})
	}
	for _, k := range singles {
		jobs = append(jobs, func() { put(k, p.single(ctx, k)) })
	}
	runBounded(ctx, p.inFlight, jobs)

	if len(retry) > 0 {
		jobs = jobs[:0]
		for _, k := range retry {
			jobs = append(jobs, func() { put(k, p.single(ctx, k)) })
		}
		runBounded(ctx, p.inFlight, jobs)
	}
	for _, k := range keys {
		if got[k] == nil {
			got[k] = &raw{err: &providers.Error{Kind: providers.KindTimeout, Detail: "the deadline (--timeout) passed before " + k.target() + " was read"}}
		}
	}
	return got
}

// runBounded runs jobs with at most n at once (n < 1:
// providers.DefaultConcurrency); jobs not started before ctx ends are
// skipped (their keys stay unanswered and read reports them as timed out).
func runBounded(ctx context.Context, n int, jobs []func()) {
	if n < 1 {
		n = providers.DefaultConcurrency
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, job := range jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			job()
		}()
	}
	wg.Wait()
}

func (p *Provider) noBatch() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.batchDenied
}

// noBatchFrom stops batching for the provider's life and logs why, once.
func (p *Provider) noBatchFrom(region string, err error, why string) {
	p.mu.Lock()
	p.batchDenied = true
	p.mu.Unlock()
	p.noBatchOnce.Do(func() {
		p.log.Warn(why, "region", region, "error", awsMessage(err))
	})
}

func regionOpt(region string) func(*secretsmanager.Options) {
	return func(o *secretsmanager.Options) { o.Region = region }
}

// batch reads up to BatchSize current versions in one call and returns the
// keys it got no usable answer for (all of them when the call itself is
// denied, so they are read singly).
func (p *Provider) batch(ctx context.Context, ks []key, put func(key, *raw)) []key {
	region := ks[0].region
	// Keys in one batch are distinct and all current, so their ids differ.
	ids := make([]string, len(ks))
	pending := make(map[string]key, len(ks))
	for i, k := range ks {
		ids[i] = k.id
		pending[k.id] = k
	}
	in := &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids}
	for {
		res, err := p.api.BatchGetSecretValue(ctx, in, regionOpt(region))
		if err != nil {
			switch code(err) {
			case "AccessDeniedException":
				p.noBatchFrom(region, err, "secretsmanager:BatchGetSecretValue is not allowed for this credential; reading each secret with GetSecretValue instead (more calls). Grant secretsmanager:BatchGetSecretValue on \"*\" to batch (see `inject policy aws`)")
				return ks
			case "UnknownOperationException", "InvalidAction", "NotImplemented":
				// An AWS-compatible server (a local emulator) without the batch call.
				p.noBatchFrom(region, err, "this Secrets Manager endpoint does not implement BatchGetSecretValue; reading each secret with GetSecretValue instead")
				return ks
			case "InvalidParameterException", "ValidationException", "InvalidRequestException":
				// One bad id (or a name and an ARN of one secret) can fail
				// the whole call; single reads give each reference its own answer.
				p.log.Debug("BatchGetSecretValue refused the request; reading these secrets one by one", "region", region, "secrets", len(ks), "error", awsMessage(err))
				return ks
			}
			for _, k := range pending {
				put(k, &raw{err: classifyFor(err, "BatchGetSecretValue", k)})
			}
			return nil
		}
		for _, v := range res.SecretValues {
			name, arn := aws.ToString(v.Name), aws.ToString(v.ARN)
			for id, k := range pending {
				if !sameSecret(id, name, arn) {
					continue
				}
				put(k, &raw{arn: arn, name: name, str: v.SecretString, bin: v.SecretBinary, version: aws.ToString(v.VersionId)})
				delete(pending, id)
			}
		}
		for _, e := range res.Errors {
			id := aws.ToString(e.SecretId)
			k, ok := pending[id]
			if !ok {
				continue
			}
			delete(pending, id)
			c := aws.ToString(e.ErrorCode)
			if isKMS(c, aws.ToString(e.Message)) {
				// Keep it for a single read, which names the key.
				pending[id] = k
				continue
			}
			put(k, &raw{err: fromCode(c, aws.ToString(e.Message), "GetSecretValue (via BatchGetSecretValue)", k)})
		}
		if res.NextToken == nil || len(pending) == 0 {
			break
		}
		in = &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids, NextToken: res.NextToken}
	}
	left := make([]key, 0, len(pending))
	for _, k := range ks {
		if _, ok := pending[k.id]; ok {
			left = append(left, k)
		}
	}
	return left
}

// sameSecret reports whether the id a reference gave (a name, a full ARN
// or a partial ARN without AWS's 6-character suffix) names the secret
// with this name and ARN.
func sameSecret(id, name, arn string) bool {
	if id == name || id == arn {
		return true
	}
	return strings.HasPrefix(id, "arn:") && len(arn) == len(id)+7 && strings.HasPrefix(arn, id+"-")
}

// single reads one version with GetSecretValue.
func (p *Provider) single(ctx context.Context, k key) *raw {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(k.id)}
	if k.stage != "" {
		in.VersionStage = aws.String(k.stage)
	}
	if k.version != "" {
		in.VersionId = aws.String(k.version)
	}
	res, err := p.api.GetSecretValue(ctx, in, regionOpt(k.region))
	if err != nil {
		e := classifyFor(err, "GetSecretValue", k)
		if isKMS(code(err), awsMessage(err)) {
			e.Detail += p.kmsHint(ctx, k)
		}
		return &raw{err: e}
	}
	return &raw{arn: aws.ToString(res.ARN), name: aws.ToString(res.Name), str: res.SecretString, bin: res.SecretBinary, version: aws.ToString(res.VersionId)}
}

// kmsHint names the secret's KMS key, which GetSecretValue's error does not,
// by asking DescribeSecret; the credential may lack that, so it is best effort.
func (p *Provider) kmsHint(ctx context.Context, k key) string {
	d, err := p.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(k.id)}, regionOpt(k.region))
	if err != nil {
		return "; the secret's KMS key could not be looked up (DescribeSecret: " + code(err) + "): find it with `aws secretsmanager describe-secret --secret-id " + k.id + " --query KmsKeyId` and grant kms:Decrypt on it"
	}
	kid := aws.ToString(d.KmsKeyId)
	if kid == "" {
		kid = "aws/secretsmanager (the AWS managed key)"
	}
	return "; the secret is encrypted with KMS key " + kid + ": grant kms:Decrypt on it (with kms:ViaService secretsmanager." + k.region + ".amazonaws.com), and check the key is enabled"
}

// errors.As target without importing smithy in every file.
func asAPIError(err error) (apiError, bool) {
	var ae apiError
	if errors.As(err, &ae) {
		return ae, true
	}
	return nil, false
}

type apiError interface {
	error
	ErrorCode() string
	ErrorMessage() string
}
