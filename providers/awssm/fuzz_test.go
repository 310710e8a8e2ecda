package awssm

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/secretbroker/secretbroker/internal/testenv/awsfake"
	"github.com/secretbroker/secretbroker/providers"
)

// sent is one Secrets Manager request as it left the provider: the action,
// the secret ids in its body and the region it was signed for.
type sent struct {
	action, region string
	ids            []string
}

// recorder sits in front of the AWS-compatible test server and notes every
// request before passing it on unchanged (the Host header is kept, so the
// signature still verifies).
type recorder struct {
	mu   sync.Mutex
	reqs []sent
}

func (rc *recorder) take() []sent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := rc.reqs
	rc.reqs = nil
	return out
}

func newRecorder(t testing.TB, s *awsfake.Server) (*recorder, string) {
	t.Helper()
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	rc := &recorder{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var in struct {
			SecretId     *string
			SecretIdList []string
		}
		_ = json.Unmarshal(body, &in)
		// Credential=AKID/DAY/REGION/SERVICE/aws4_request
		var region string
		if _, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
			cred, _, _ = strings.Cut(cred, ",")
			if parts := strings.Split(cred, "/"); len(parts) == 5 {
				region = parts[2]
			}
		}
		req := sent{action: r.Header.Get("X-Amz-Target"), region: region, ids: in.SecretIdList}
		if in.SecretId != nil {
			req.ids = append(req.ids, *in.SecretId)
		}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, req)
		rc.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return rc, ts.URL
}

// FuzzRequestIdentity: for any aws-sm:// reference the parser accepts, the
// identity the plan is checked on (Identity, with the block's region) is
// what the provider sends: every request that reaches the AWS-compatible
// server names that secret (its id, or the ARN that holds it) in the region
// the request is signed for. A refusing gate means nothing is sent at all.
func FuzzRequestIdentity(f *testing.F) {
	for _, s := range []string{
		"prod/db", "prod/db#password", "prod/db?region=us-east-1", "prod/db?region=EU_WEST",
		"prod/db-AbCdEf", "prod/db?version-stage=AWSPENDING", "prod/db?version-id=v1#k",
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/admin-AbCdEf",
		"arn:aws:secretsmanager:eu-west-1:210987654321:secret:prod/admin",
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf?region=eu-west-1",
		"arn:aws:s3:::bucket", "a%2Fb", "a%3Fregion=us-east-1", "a b", "ü/ß",
		"prod/db?region=eu-west-1&region=us-east-1",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	s := fake(f)
	s.CreateString("prod/db", fakeValue("db"))
	s.CreateStringIn("us-east-1", awsfake.Account, "prod/db", fakeValue("east"))
	rc, endpoint := newRecorder(f, s)
	p := newProvider(f, s, nil, map[string]any{"endpoint": endpoint})
	env := providers.Env{Config: map[string]any{"region": region}}
	f.Fuzz(func(t *testing.T, path string, deny bool) {
		r, err := providers.ParseRef(Scheme + "://" + path)
		if err != nil {
			return
		}
		want, err := Identity(r, env)
		if err != nil {
			return
		}
		var asked []string
		gate := func(id string) error {
			asked = append(asked, id)
			if deny {
				return providers.Errorf(providers.Ref{}, providers.KindDenied, "denied")
			}
			return nil
		}
		rc.take()
		res := p.Fetch(providers.WithGate(context.Background(), gate), []providers.Ref{r})
		reqs := rc.take()
		if len(reqs) == 0 {
			if res[0].Err == nil {
				t.Fatalf("%q: a value without a request", r.Raw)
			}
			return
		}
		if deny || len(asked) == 0 {
			t.Fatalf("%q: sent %v with the gate asked %q (deny %v)", r.Raw, reqs, asked, deny)
		}
		for _, q := range reqs {
			if len(q.ids) == 0 {
				t.Fatalf("%q: %s without a secret id", r.Raw, q.action)
			}
			for _, id := range q.ids {
				if strings.HasPrefix(id, "arn:") {
					a, err := ParseARN(id)
					if err != nil || a.Region != q.region {
						t.Fatalf("%q: sent ARN %q signed for %q", r.Raw, id, q.region)
					}
				}
				if got := Identities(id, q.region, AnyAccount)[0]; got != want {
					t.Fatalf("%q: plan checked %q, %s sent for %q", r.Raw, want, q.action, got)
				}
			}
		}
	})
}

// A name that is not UTF-8 would be sent as another name (U+FFFD for each
// bad byte in the JSON body), so the parser refuses it.
func TestNameNotUTF8(t *testing.T) {
	for _, raw := range []string{"aws-sm://%A0", "aws-sm://prod/\xa0db", "aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:%FF"} {
		if _, err := providers.ParseRef(raw); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Errorf("%q: %v, want a refusal", raw, err)
		}
	}
}
