package awssm

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/providers"
)

func TestAudit(t *testing.T) {
	s := fake(t)
	s.CreateString("prod/db", "fake-db")
	s.CreateString("token", "fake-tok")
	t.Setenv("AWS_ENDPOINT_URL_STS", s.URL)
	rs := refs(t, "aws-sm://prod/db#password", "aws-sm://token")
	audit := func() (bool, string) {
		t.Helper()
		sm, id, reg, err := NewAudit(context.Background(), providers.Env{Config: map[string]any{"region": region, "endpoint": s.URL}})
		if err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		broader, err := Audit(context.Background(), sm, id, rs, reg, &out, &errOut)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut.String(), "never prove it minimal") {
			t.Errorf("no caveat on stderr: %s", errOut.String())
		}
		t.Log(out.String())
		return broader, out.String()
	}

	// A credential that may read any secret and list them all.
	broader, out := audit()
	if !broader || strings.Count(out, "BROADER") != 3 || !strings.Contains(out, "prod/* in "+region) || !strings.Contains(out, "ListSecrets") {
		t.Errorf("wildcard credential: broader=%v\n%s", broader, out)
	}
	if !strings.Contains(out, "credential arn:aws:iam::123456789012:user/test") {
		t.Errorf("identity not shown:\n%s", out)
	}

	// Exactly what `inject policy aws` grants.
	s.Restrict("GetSecretValue", "prod/db", "token")
	s.Deny("ListSecrets")
	if broader, out = audit(); broader || strings.Count(out, "ok:") != 3 {
		t.Errorf("least-privilege credential: broader=%v\n%s", broader, out)
	}
	if strings.Contains(out, "fake-") {
		t.Errorf("audit output shows a value:\n%s", out)
	}

	// No usable credential.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	sm, id, reg, _ := NewAudit(context.Background(), providers.Env{Config: map[string]any{"region": region, "endpoint": s.URL}})
	var out2, err2 bytes.Buffer
	if _, err := Audit(context.Background(), sm, id, rs, reg, &out2, &err2); err == nil || !strings.Contains(err.Error(), "no usable AWS credential") {
		t.Errorf("bad credential: %v", err)
	}
}
