package spec

import (
	"reflect"
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/providers"
)

// DeclaredSecrets names each secret and its variable exactly as Load does
// for the same file and environment references.
func TestDeclaredSecretsAgreesWithLoad(t *testing.T) {
	file := "dir: /ignored\nsecrets:\n  - {name: db.password, ref: \"vault://secret/app#db\"}\n  - {name: api, ref: \"vault://secret/app#api\", env: API_TOKEN_PATH}\n  - {name: quiet, ref: \"vault://secret/app#q\", env: \"\"}\n"
	env := []string{"STRIPE_KEY=aws-sm://prod/stripe#key"}
	s, err := load(t, file, env)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DeclaredSecrets([]byte(file), env, providers.EnvSchemes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s.Secrets) {
		t.Errorf("DeclaredSecrets = %+v\nLoad         = %+v", got, s.Secrets)
	}
	if len(got) != 4 || got[0].EnvVar != "DB_PASSWORD_FILE" || got[1].EnvVar != "API_TOKEN_PATH" || got[2].EnvVar != "" || got[3].EnvVar != "STRIPE_KEY_FILE" {
		t.Errorf("variables: %+v", got)
	}
	if got, err := DeclaredSecrets(nil, env, providers.EnvSchemes()); err != nil || len(got) != 1 {
		t.Errorf("no file: %+v %v", got, err)
	}
}

func TestDeclaredSecretsProblems(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"secrets: [", "not valid YAML"},
		{"secrets:\n  - {name: stripe_key, ref: \"vault://a#b\"}\n", "secret file \"stripe_key\" is also declared"},
		{"secrets:\n  - {name: x, ref: \"valut://a\"}\n", "secrets[0].ref"},
		{"Secrets:\n  - {name: \"../x\", ref: \"vault://a#b\"}\n", "secrets[0].name"},
	} {
		_, err := DeclaredSecrets([]byte(tc.file), []string{"STRIPE_KEY=aws-sm://prod/stripe#key"}, providers.EnvSchemes())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.file, err, tc.want)
		}
	}
}
