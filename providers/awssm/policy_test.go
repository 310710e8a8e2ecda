package awssm

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestPolicy(t *testing.T) {
	arn := "arn:aws:secretsmanager:us-east-1:123456789012:secret:shared/api-AbC123"
	pol, notes, err := Policy(refs(t,
		"aws-sm://prod/db#password",
		"aws-sm://prod/db#user",
		"aws-sm://prod/api?version-stage=AWSPREVIOUS",
		"aws-sm://"+arn,
		"other://x.yaml",
	), PolicyOptions{Region: "eu-west-1", Account: "123456789012", KMSKeys: []string{"arn:aws:kms:eu-west-1:123456789012:key/k1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := IAMPolicy{Version: "2012-10-17", Statement: []Statement{
		{Sid: "ReadSecrets", Effect: "Allow", Action: []string{"secretsmanager:GetSecretValue"}, Resource: []string{
			"arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/api-??????",
			"arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-??????",
			arn,
		}},
		{Sid: "DecryptSecretsViaSecretsManager", Effect: "Allow", Action: []string{"kms:Decrypt"},
			Resource:  []string{"arn:aws:kms:eu-west-1:123456789012:key/k1"},
			Condition: map[string]map[string]any{"StringEquals": {"kms:ViaService": []any{"secretsmanager.eu-west-1.amazonaws.com", "secretsmanager.us-east-1.amazonaws.com"}}}},
	}}
	// prod/db (current, eu-west-1) and the ARN (current, us-east-1) are one
	// current secret per region, prod/api is pinned: nothing is batched.
	if !reflect.DeepEqual(pol, want) {
		t.Errorf("got\n%s\nwant\n%s", pol.JSON(), want.JSON())
	}
	if len(notes) != 0 {
		t.Errorf("notes: %q", notes)
	}
	var back map[string]any
	if err := json.Unmarshal(pol.JSON(), &back); err != nil {
		t.Fatal(err)
	}
}

func TestPolicyBatch(t *testing.T) {
	pol, notes, err := Policy(refs(t, "aws-sm://a", "aws-sm://b?region=eu-west-1", "aws-sm://arn:aws:secretsmanager:eu-west-1:111111111111:secret:c"), PolicyOptions{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pol.Statement) != 2 || pol.Statement[1].Action[0] != "secretsmanager:BatchGetSecretValue" || pol.Statement[1].Resource[0] != "*" {
		t.Fatalf("%s", pol.JSON())
	}
	res := strings.Join(pol.Statement[0].Resource, " ")
	for _, w := range []string{"secret:a-??????", "eu-west-1:*:secret:b-??????", "arn:aws:secretsmanager:eu-west-1:111111111111:secret:c-??????"} {
		if !strings.Contains(res, w) {
			t.Errorf("resources lack %s: %s", w, res)
		}
	}
	all := strings.Join(notes, "\n")
	for _, w := range []string{"--account", "partial ARN", `Resource is "*"`, "--kms-key"} {
		if !strings.Contains(all, w) {
			t.Errorf("notes lack %q:\n%s", w, all)
		}
	}
}

func TestPolicyErrors(t *testing.T) {
	if _, _, err := Policy(refs(t, "aws-sm://a"), PolicyOptions{}); err == nil || !strings.Contains(err.Error(), "no region") {
		t.Errorf("no region: %v", err)
	}
	if _, _, err := Policy(refs(t, "other://a"), PolicyOptions{Region: "x"}); err == nil || !strings.Contains(err.Error(), "no aws-sm://") {
		t.Errorf("no refs: %v", err)
	}
	if _, _, err := Policy(refs(t, "aws-sm://a"), PolicyOptions{Region: "eu-west-1", KMSKeys: []string{"alias/x"}}); err == nil || !strings.Contains(err.Error(), "--kms-key") {
		t.Errorf("bad key: %v", err)
	}
	if pol, _, _ := Policy(refs(t, "aws-sm://a"), PolicyOptions{Region: "cn-north-1", Account: "1"}); !strings.HasPrefix(pol.Statement[0].Resource[0], "arn:aws-cn:") {
		t.Errorf("partition: %s", pol.JSON())
	}
}
