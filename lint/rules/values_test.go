package rules_test

import (
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
	. "github.com/secretbroker/secretbroker/lint/rules"
)

func TestNotAValue(t *testing.T) {
	secret := testsecret.Alnum(24)
	for _, c := range []struct {
		line string
		want bool // true: no secret value
	}{
		{"DB_PASSWORD_FILE=/run/secrets/db", true},
		{"db.password.path: /etc/app/db.pass", true},
		{"secretName: prod-db-password", true},
		{"tokenId = \"1234abcd5678\"", true},
		{"API_TOKEN=https://auth.example.org/token", true},
		{"API_TOKEN=vault://secret/data/api#token", true},
		{"API_TOKEN=op://vault/item/field", true},
		{"DB_PASSWORD=aws-sm://prod/db", true},
		{"DB_SECRET=arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbC", true},
		{"API_TOKEN=./conf/token.txt", true},
		{"API_TOKEN=" + secret, false},
		{"API_TOKEN=/" + secret, false},
		{"DB_URL_PASSWORD=https://u:" + secret + "@db.example.org/", false},
		{"PASSWORD=/Kx9+" + secret, false},
	} {
		buf := []byte(c.line)
		v := valueOf(c.line)
		a := strings.LastIndex(c.line, v)
		got := NotAValue(buf, a, a+len(v)) != ""
		if got != c.want {
			t.Errorf("%q: not a value = %v, want %v", c.line, got, c.want)
		}
	}
	// The value would be on the next line: the assignment is empty.
	buf := []byte("DB_PASSWORD=\nOTHER=" + secret)
	if NotAValue(buf, len("DB_PASSWORD=\n"), len(buf)) == "" {
		t.Error("a value on the next line taken for DB_PASSWORD's")
	}
}

func valueOf(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '=' || line[i] == ':' && i+1 < len(line) && line[i+1] == ' ' {
			v := line[i+1:]
			for len(v) > 0 && (v[0] == ' ' || v[0] == '"') {
				v = v[1:]
			}
			for len(v) > 0 && v[len(v)-1] == '"' {
				v = v[:len(v)-1]
			}
			return v
		}
	}
	return line
}

// A published example that runs straight into the next string of a binary
// is still the published example.
func TestPublishedExampleEmbedded(t *testing.T) {
	ex := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzb21lIjoicGF5bG9hZCJ9.4twFt5NiznN84AWoo1d7KO1T_yoc0Z6XOpOVswacPZg"
	if !ContainsPublishedExample([]byte(ex + "xY")) {
		t.Fatal("embedded example not recognised")
	}
	if ContainsPublishedExample([]byte(testsecret.JWT())) {
		t.Fatal("a random JWT taken for an example")
	}
}

func scanText(t *testing.T, name, text string) []Match {
	t.Helper()
	e, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return e.NewScanner().ScanBytes([]byte(text), name)
}

// Message catalogues translate the word "password"; \uXXXX escapes are
// decoded before the entropy check.
func TestNaturalLanguage(t *testing.T) {
	ja := "login.password=\\u30d1\\u30b9\\u30ef\\u30fc\\u30c9\\u304c\\u9055\\u3044\\u307e\\u3059\n"
	if m := scanText(t, "org/apache/catalina/LocalStrings_ja.properties", ja); len(m) > 0 {
		t.Errorf("catalogue flagged: %s", m[0].Rule.ID)
	}
	if m := scanText(t, "conf/app.properties", ja); len(m) > 0 {
		t.Errorf("escaped Japanese text flagged: %s", m[0].Rule.ID)
	}
	if !IsMessageCatalogue("a/messages_pt_BR.properties") || IsMessageCatalogue("a/app.properties") {
		t.Error("IsMessageCatalogue")
	}
	// Password, not Alnum: the generic rules want a letter and a digit,
	// and 24 random alphanumerics have no digit about once in 70 draws.
	secret := testsecret.Password(24)
	if m := scanText(t, "conf/app.properties", "db.password="+secret+"\n"); len(m) != 1 {
		t.Errorf("real value missed: %d", len(m))
	}
}

// Values under example: in an OpenAPI document are documented examples.
func TestOpenAPIExample(t *testing.T) {
	tok := testsecret.GitHubPAT()
	doc := "openapi: 3.0.0\ncomponents:\n  schemas:\n    Token:\n      type: string\n      example: " + tok + "\n    Other:\n      properties:\n        auth:\n          examples:\n            - " + tok[:4] + testsecret.GitHubPAT()[4:] + "\n"
	ms := scanText(t, "api/openapi.yaml", doc)
	if len(ms) == 0 {
		t.Fatal("no match")
	}
	for _, m := range ms {
		if !m.Example {
			t.Errorf("line %d not taken as an example", m.Line)
		}
	}
	ms = scanText(t, "conf/app.yaml", "token: "+tok+"\n")
	if len(ms) == 0 {
		t.Fatal("plain YAML: no match")
	}
	for _, m := range ms {
		if m.Example {
			t.Errorf("plain YAML value taken as an example")
		}
	}
}

// A stand-in word counts where it stands as a word; buried in a random
// run it is chance. A random 90-character token holds "todo" or "xxxx"
// about once in 5,000 draws, and such a token was dismissed as a
// placeholder (the TestDetect/vault flake).
func TestPlaceholderWords(t *testing.T) {
	for v, want := range map[string]bool{
		"changeme123": true, "my-changeme": true, "myExampleKey": true, "useDUMMYValue": true,
		"dummyToken": true, "AKIA" + strings.Repeat("X", 16): true, "sk_" + "live_xxxx": true, "<your-token>": true,
		"${DB_PASSWORD}": true, "TODO_replace": true, "abc.todo": true, "xxxxxxxxxxxxxxxx": true,
		"Kq8ZtodoqP1mXv3Rw7yN2bL5cD9fG4hJ6": false, "A1xXxX2bQ7rT9wE3yU5iO8pL": false,
		"Zk9Rexample3Qw7": false, "p4Ssw0rdTOdO9x": false,
	} {
		if got := IsPlaceholder([]byte(v)); got != want {
			t.Errorf("%s: placeholder %v (%s), want %v", v, got, PlaceholderReason([]byte(v)), want)
		}
	}
}
