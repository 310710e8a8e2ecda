package awssm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/internal/testenv/awsfake"
	"github.com/secretbroker/secretbroker/providers"
)

const region = "eu-west-1"

// fake starts a server and points the SDK's default chain at its
// credentials (never at a real account: IMDS and the shared files are off).
func fake(t testing.TB) *awsfake.Server {
	t.Helper()
	s := awsfake.New(region)
	t.Cleanup(s.Close)
	for k, v := range s.Env() {
		if k == "AWS_ENDPOINT_URL_SECRETS_MANAGER" || k == "AWS_REGION" {
			continue // each test says how it finds the server
		}
		t.Setenv(k, v)
	}
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "")
	t.Setenv("AWS_PROFILE", "")
	return s
}

func newProvider(t testing.TB, s *awsfake.Server, log *slog.Logger, extra map[string]any) *Provider {
	t.Helper()
	cfg := map[string]any{"region": region, "endpoint": s.URL}
	for k, v := range extra {
		cfg[k] = v
	}
	p, err := New(context.Background(), providers.Env{Config: cfg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Provider)
}

// fakeValue makes a clearly fake, random test value.
func fakeValue(label string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "fake-" + label + "-" + hex.EncodeToString(b)
}

func refs(t testing.TB, raws ...string) []providers.Ref {
	t.Helper()
	out := make([]providers.Ref, len(raws))
	for i, s := range raws {
		r, err := providers.ParseRef(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = r
	}
	return out
}

func TestValues(t *testing.T) {
	s := fake(t)
	pw, user := fakeValue("pw"), fakeValue("user")
	jsonDoc := fmt.Sprintf(`{"password":%q,"user":%q,"port":5432,"nested":{"a/b":{"c":%q}},"list":["x","y"]}`, pw, user, pw)
	dbARN := s.CreateString("prod/db", jsonDoc)
	plain := fakeValue("plain")
	s.CreateString("plain", plain)
	bin := []byte{0, 1, 2, 0xff, 'f', 'a', 'k', 'e'}
	s.CreateBinary("bin", bin)

	old := fakeValue("old")
	s.CreateString("rotated", old)
	cur := fakeValue("cur")
	curID := s.PutString("rotated", cur)

	p := newProvider(t, s, nil, nil)
	tests := []struct{ ref, want string }{
		{"aws-sm://prod/db#password", pw},
		{"aws-sm://prod/db#user", user},
		{"aws-sm://prod/db#port", "5432"},
		{"aws-sm://prod/db#/nested/a~1b/c", pw},
		{"aws-sm://prod/db#/list/1", "y"},
		{"aws-sm://prod/db", jsonDoc},
		{"aws-sm://" + dbARN + "#password", pw},
		{"aws-sm://" + strings.TrimSuffix(dbARN, dbARN[len(dbARN)-7:]) + "#user", user}, // partial ARN
		{"aws-sm://plain", plain},
		{"aws-sm://bin", string(bin)},
		{"aws-sm://rotated", cur},
		{"aws-sm://rotated?version-stage=AWSCURRENT", cur},
		{"aws-sm://rotated?version-stage=AWSPREVIOUS", old},
		{"aws-sm://rotated?version-id=" + curID, cur},
		{"aws-sm://rotated?region=" + region, cur},
	}
	var raws []string
	for _, tt := range tests {
		raws = append(raws, tt.ref)
	}
	res := p.Fetch(context.Background(), refs(t, raws...))
	for i, tt := range tests {
		if res[i].Err != nil {
			t.Errorf("%s: %v", tt.ref, res[i].Err)
			continue
		}
		if got := res[i].Secret.Value.Reveal(); !bytes.Equal(got, []byte(tt.want)) {
			t.Errorf("%s: wrong value (%d bytes, want %d)", tt.ref, len(got), len(tt.want))
		}
	}
	if res[13].Secret.Version != curID {
		t.Errorf("version id = %q, want %q", res[13].Secret.Version, curID)
	}
	// Deduped on (id, stage, version): prod/db by name (5 keys), by ARN,
	// by partial ARN, plain, bin, rotated (current, also via
	// ?version-stage=AWSCURRENT and ?region=) are 7 current-version secrets
	// -> one batch; AWSPREVIOUS and the version id -> 2 single reads.
	if b, g := s.Calls("BatchGetSecretValue"), s.Calls("GetSecretValue"); b != 1 || g != 2 {
		t.Errorf("calls: %d BatchGetSecretValue, %d GetSecretValue; want 1 and 2", b, g)
	}
	if n := s.SignatureFailures(); n != 0 {
		t.Errorf("%d requests failed signature verification", n)
	}
}

func TestSingleCurrentUsesGetSecretValue(t *testing.T) {
	s := fake(t)
	s.CreateString("one", `{"k":"fake-v"}`)
	p := newProvider(t, s, nil, nil)
	res := p.Fetch(context.Background(), refs(t, "aws-sm://one#k", "aws-sm://one"))
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if b, g := s.Calls("BatchGetSecretValue"), s.Calls("GetSecretValue"); b != 0 || g != 1 {
		t.Errorf("calls: %d batch, %d get; want 0 and 1", b, g)
	}
}

func TestBatchOf45(t *testing.T) {
	s := fake(t)
	want := map[string]string{}
	var raws []string
	for i := range 45 {
		name := fmt.Sprintf("app/s%02d", i)
		want[name] = fakeValue("v")
		s.CreateString(name, want[name])
		raws = append(raws, "aws-sm://"+name)
	}
	p := newProvider(t, s, nil, nil)
	res := p.Fetch(context.Background(), refs(t, raws...))
	for i, r := range res {
		name := strings.TrimPrefix(raws[i], "aws-sm://")
		if r.Err != nil || string(r.Secret.Value.Reveal()) != want[name] {
			t.Errorf("%s: err=%v", name, r.Err)
		}
	}
	if b, total := s.Calls("BatchGetSecretValue"), s.Calls(""); b != 3 || total != 3 {
		t.Errorf("calls: %d batch of %d total; want exactly 3 batch calls", b, total)
	}
}

func TestBatchDeniedFallsBack(t *testing.T) {
	s := fake(t)
	var raws []string
	for i := range 25 {
		name := fmt.Sprintf("s%d", i)
		s.CreateString(name, fakeValue("v"))
		raws = append(raws, "aws-sm://"+name)
	}
	s.Deny("BatchGetSecretValue")
	var logBuf bytes.Buffer
	p := newProvider(t, s, slog.New(slog.NewTextHandler(&logBuf, nil)), nil)
	res := p.Fetch(context.Background(), refs(t, raws...))
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("%s: %v", raws[i], r.Err)
		}
	}
	if g := s.Calls("GetSecretValue"); g != 25 {
		t.Errorf("GetSecretValue calls = %d, want 25", g)
	}
	if n := strings.Count(logBuf.String(), "BatchGetSecretValue is not allowed"); n != 1 {
		t.Errorf("fallback logged %d times, want once:\n%s", n, logBuf.String())
	}
	// A second Fetch on the same provider does not try the batch again.
	s.ResetCalls()
	p.Fetch(context.Background(), refs(t, raws[:3]...))
	if b := s.Calls("BatchGetSecretValue"); b != 0 {
		t.Errorf("batch retried after denial: %d calls", b)
	}
}

func TestErrors(t *testing.T) {
	s := fake(t)
	s.CreateString("json", `{"alpha":"fake-a","beta":"fake-b"}`)
	s.CreateString("notjson", "fake-plain-value: not json")
	s.CreateBinary("bin", []byte{1, 2, 3})
	s.CreateString("secret-denied", "fake-d")
	s.Deny("GetSecretValue", "secret-denied")
	s.CreateString("kms", "fake-k")
	s.SetKMSKey("kms", "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
	s.FailKMS("kms")
	s.CreateString("kms-nodesc", "fake-k2")
	s.FailKMS("kms-nodesc")
	s.Deny("DescribeSecret", "kms-nodesc")

	tests := []struct {
		ref  string
		kind providers.Kind
		want []string // substrings of the message
	}{
		{"aws-sm://missing", providers.KindNotFound, []string{`"missing"`, region, "ResourceNotFoundException"}},
		{"aws-sm://json?version-stage=AWSPENDING", providers.KindNotFound, []string{"stage AWSPENDING", "list-secret-version-ids"}},
		{"aws-sm://json#gamma", providers.KindNotFound, []string{`no key "gamma"`, `"alpha", "beta"`}},
		{"aws-sm://notjson#k", providers.KindInvalid, []string{"not JSON", "drop #k"}},
		{"aws-sm://bin#k", providers.KindInvalid, []string{"binary"}},
		{"aws-sm://secret-denied", providers.KindDenied, []string{"secretsmanager:GetSecretValue", `"secret-denied"`, "AccessDeniedException"}},
		{"aws-sm://kms", providers.KindDenied, []string{"KMS key arn:aws:kms:eu-west-1:123456789012:key/1234abcd", "kms:Decrypt", "DecryptionFailure"}},
		{"aws-sm://kms-nodesc", providers.KindDenied, []string{"describe-secret", "kms:Decrypt"}},
		{"aws-sm://arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf?region=eu-west-1", providers.KindInvalid, []string{"contradicts"}},
		{"aws-sm://arn:aws:s3:::bucket", providers.KindInvalid, []string{"not a Secrets Manager secret ARN"}},
	}
	p := newProvider(t, s, nil, nil)
	var raws []string
	for _, tt := range tests {
		raws = append(raws, tt.ref)
	}
	// All at once (current ones go through one batch, whose per-secret
	// Errors must map to the right reference) and one by one.
	all := p.Fetch(context.Background(), refs(t, raws...))
	for _, r := range all {
		t.Log(r.Err)
	}
	for i, tt := range tests {
		for _, res := range []providers.Result{all[i], p.Fetch(context.Background(), refs(t, tt.ref))[0]} {
			if res.Err == nil {
				t.Errorf("%s: no error", tt.ref)
				continue
			}
			msg := res.Err.Error()
			if k := providers.KindOf(res.Err); k != tt.kind {
				t.Errorf("%s: kind %v, want %v (%s)", tt.ref, k, tt.kind, msg)
			}
			if !strings.HasPrefix(msg, tt.ref+": ") {
				t.Errorf("%s: message does not start with the reference: %s", tt.ref, msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%s: message lacks %q: %s", tt.ref, w, msg)
				}
			}
			if strings.Contains(msg, "fake-") {
				t.Errorf("%s: message leaks a value: %s", tt.ref, msg)
			}
		}
	}
}

func TestNoRegion(t *testing.T) {
	s := fake(t)
	p, err := New(context.Background(), providers.Env{Config: map[string]any{"endpoint": s.URL}})
	if err != nil {
		t.Fatal(err)
	}
	res := p.Fetch(context.Background(), refs(t, "aws-sm://x"))
	if k := providers.KindOf(res[0].Err); k != providers.KindConfig || !strings.Contains(res[0].Err.Error(), "no AWS region") {
		t.Errorf("got %v", res[0].Err)
	}
	// An ARN carries its region.
	arn := s.CreateString("x", "fake-x")
	res = p.Fetch(context.Background(), refs(t, "aws-sm://"+arn))
	if res[0].Err != nil {
		t.Error(res[0].Err)
	}
}

func TestThrottledThenSuccess(t *testing.T) {
	s := fake(t)
	s.CreateString("a", "fake-a")
	s.CreateString("b", "fake-b")
	s.Throttle(2)
	p := newProvider(t, s, nil, nil)
	res := p.Fetch(context.Background(), refs(t, "aws-sm://a", "aws-sm://b"))
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if b := s.Calls("BatchGetSecretValue"); b != 3 {
		t.Errorf("batch calls = %d, want 3 (two throttled, then success)", b)
	}
	s.ResetCalls()
	s.Fail5xx(1)
	if r := p.Fetch(context.Background(), refs(t, "aws-sm://a"))[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	if g := s.Calls("GetSecretValue"); g != 2 {
		t.Errorf("GetSecretValue calls = %d, want 2 (500, then success)", g)
	}
}

func TestThrottledPastDeadline(t *testing.T) {
	s := fake(t)
	s.CreateString("a", "fake-a")
	s.Throttle(1000)
	p := newProvider(t, s, nil, map[string]any{"max_attempts": 1000})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := p.Fetch(ctx, refs(t, "aws-sm://a"))
	if k := providers.KindOf(res[0].Err); k != providers.KindTimeout {
		t.Errorf("got %v (%v)", k, res[0].Err)
	}
	t.Log(res[0].Err)
}

func TestEndpointFromEnvironment(t *testing.T) {
	s := fake(t)
	s.CreateString("envsecret", "fake-env")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", s.URL)
	t.Setenv("AWS_REGION", region)
	p, err := New(context.Background(), providers.Env{Config: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	res := p.Fetch(context.Background(), refs(t, "aws-sm://envsecret"))
	if res[0].Err != nil || string(res[0].Secret.Value.Reveal()) != "fake-env" {
		t.Fatalf("err=%v", res[0].Err)
	}
	if s.Calls("GetSecretValue") != 1 {
		t.Error("the request did not reach the server named by AWS_ENDPOINT_URL_SECRETS_MANAGER")
	}
}

func TestWrongCredentialsRefused(t *testing.T) {
	s := fake(t)
	s.CreateString("a", "fake-a")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-right-key")
	p := newProvider(t, s, nil, nil)
	res := p.Fetch(context.Background(), refs(t, "aws-sm://a"))
	if k := providers.KindOf(res[0].Err); k != providers.KindConfig {
		t.Errorf("got %v: %v", k, res[0].Err)
	}
	if s.SignatureFailures() == 0 {
		t.Error("the server accepted a request signed with the wrong key")
	}
}

func TestConfig(t *testing.T) {
	for _, bad := range []map[string]any{
		{"regoin": "x"},
		{"endpoint": "ftp://x"},
		{"endpoint": "not a url"},
		{"role_arn": "app"},
		{"max_attempts": -1},
	} {
		if _, err := New(context.Background(), providers.Env{Config: bad}); providers.KindOf(err) != providers.KindConfig {
			t.Errorf("%v: got %v", bad, err)
		}
	}
	c, err := DecodeConfig(map[string]any{"region": "us-east-2", "profile": "p", "role_arn": "arn:aws:iam::1:role/r", "endpoint": "https://x"})
	if err != nil || c.Region != "us-east-2" || c.Profile != "p" || c.RoleARN == "" || c.Endpoint != "https://x" {
		t.Errorf("%+v %v", c, err)
	}
}

func TestRoleARN(t *testing.T) {
	s := fake(t)
	s.CreateString("a", "fake-a")
	t.Setenv("AWS_ENDPOINT_URL_STS", s.URL)
	role := "arn:aws:iam::123456789012:role/app"
	p := newProvider(t, s, nil, map[string]any{"role_arn": role})
	if r := p.Fetch(context.Background(), refs(t, "aws-sm://a"))[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := s.AssumedRoles(); len(got) != 1 || got[0] != role {
		t.Errorf("assumed roles: %q", got)
	}
	if c := s.Caller("GetSecretValue"); c != "arn:aws:sts::123456789012:assumed-role/app/secretbroker-inject" {
		t.Errorf("GetSecretValue was called by %q, not the assumed role", c)
	}
}

func TestProfile(t *testing.T) {
	s := fake(t)
	s.CreateString("a", "fake-a")
	dir := t.TempDir()
	cfgFile, credFile := dir+"/config", dir+"/credentials"
	writeFile(t, cfgFile, "[profile team]\nregion = "+region+"\n")
	writeFile(t, credFile, "[team]\naws_access_key_id = "+s.AccessKeyID+"\naws_secret_access_key = "+s.SecretAccessKey+"\n")
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	// No region in the block: the profile's region applies.
	p, err := New(context.Background(), providers.Env{Config: map[string]any{"profile": "team", "endpoint": s.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Fetch(context.Background(), refs(t, "aws-sm://a"))[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	if _, err := New(context.Background(), providers.Env{Config: map[string]any{"profile": "nope"}}); providers.KindOf(err) != providers.KindConfig {
		t.Errorf("unknown profile: %v", err)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKMSAccessDeniedIsKMS(t *testing.T) {
	// GetSecretValue's answer when the caller lacks kms:Decrypt on the key.
	e := fromCode("AccessDeniedException", "Access to KMS is not allowed", "GetSecretValue", key{id: "x", region: region})
	if e.Kind != providers.KindDenied || !strings.Contains(e.Detail, "KMS key") {
		t.Errorf("%v", e)
	}
}

func TestBatchRefusedReadsSingly(t *testing.T) {
	s := fake(t)
	s.CreateString("a", "fake-a")
	s.CreateString("b", "fake-b")
	s.FailNext("BatchGetSecretValue", "InvalidParameterException", "You can't specify the same secret more than once.")
	p := newProvider(t, s, nil, nil)
	for _, r := range p.Fetch(context.Background(), refs(t, "aws-sm://a", "aws-sm://b", "aws-sm://nope")) {
		if r.Err != nil && providers.KindOf(r.Err) != providers.KindNotFound {
			t.Error(r.Err)
		}
	}
	if b, g := s.Calls("BatchGetSecretValue"), s.Calls("GetSecretValue"); b != 1 || g != 3 {
		t.Errorf("calls: %d batch, %d get; want 1 and 3", b, g)
	}
	// Unlike a denial, this does not stop later batches.
	s.ResetCalls()
	p.Fetch(context.Background(), refs(t, "aws-sm://a", "aws-sm://b"))
	if b := s.Calls("BatchGetSecretValue"); b != 1 {
		t.Errorf("batch calls after a refused request: %d, want 1", b)
	}
}

func TestServerErrorsAfterRetries(t *testing.T) {
	s := fake(t)
	s.CreateString("a", "fake-a")
	s.CreateString("b", "fake-b")
	s.Fail5xx(100)
	p := newProvider(t, s, nil, map[string]any{"max_attempts": 2})
	res := p.Fetch(context.Background(), refs(t, "aws-sm://a", "aws-sm://b"))
	for i, name := range []string{`"a"`, `"b"`} {
		if k := providers.KindOf(res[i].Err); k != providers.KindUnreachable || !strings.Contains(res[i].Err.Error(), name) || !strings.Contains(res[i].Err.Error(), "InternalServiceError") {
			t.Errorf("%s: %v", name, res[i].Err)
		}
	}
	if b := s.Calls("BatchGetSecretValue"); b != 2 {
		t.Errorf("batch calls = %d, want 2 (max_attempts)", b)
	}
}
