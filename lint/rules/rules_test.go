package rules_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
	"github.com/secretbroker/secretbroker/lint/rules"
)

func engine(t testing.TB) *rules.Engine {
	t.Helper()
	e, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRuleCount(t *testing.T) {
	rs, err := rules.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) < 150 {
		t.Fatalf("%d rules, want at least 150", len(rs))
	}
}

func ids(ms []rules.Match) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Rule.ID)
	}
	return out
}

func TestDetect(t *testing.T) {
	aws, awsSecret := testsecret.AWSKeyID(), testsecret.AWSSecret()
	tests := []struct {
		name, file, text string
		want             string // rule id, "" for none
	}{
		{"github pat", "app/config.js", `const t = "` + testsecret.GitHubPAT() + `";`, "github-pat"},
		{"github bad checksum", "a.txt", testsecret.GitHubPATBadChecksum(), ""},
		{"aws key id", "a.sh", "export AWS_ACCESS_KEY_ID=" + aws, "aws-access-key-id"},
		{"aws secret", "a.sh", "aws_secret_access_key = " + awsSecret, "aws-secret-access-key"},
		{"aws example", "a.sh", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", ""},
		{"aws example secret", "a.sh", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""},
		{"slack", "x", "token: " + testsecret.Slack(), "slack-bot-token"},
		{"vault", "x", "VAULT_TOKEN=" + testsecret.Vault(), "vault-service-token"},
		{"stripe", "x", "key=" + testsecret.Stripe(), "stripe-secret-key"},
		{"npm token", "x", testsecret.NPM(), "npm-access-token"},
		{"npmrc", "home/.npmrc", "//registry.npmjs.org/:_authToken=" + testsecret.Alnum(36), "npmrc-auth-token"},
		{"npmrc placeholder", "home/.npmrc", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}", ""},
		{"rsa key", "root/.ssh/key", "x\n" + testsecret.RSAKeyPEM() + "y\n", "private-key-rsa"},
		{"pkcs8 key", "k.pem", testsecret.ECKeyPEM(), "private-key-pkcs8"},
		{"openssh key", "id_ed25519", testsecret.OpenSSHKeyPEM(false), "private-key-openssh"},
		{"openssh encrypted key", "id_ed25519", testsecret.OpenSSHKeyPEM(true), "private-key-openssh"},
		{"truncated key", "k.pem", "-----BEGIN RSA PRIVATE" + " KEY-----\nMIIEowIBAAKCAQEAexample\n-----END RSA PRIVATE" + " KEY-----\n", ""},
		{"public key", "k.pub", "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" + testsecret.Alnum(40) + "\n-----END PUBLIC KEY-----\n", ""},
		{"jwt", "x", "Authorization: Bearer " + testsecret.JWT(), "jwt"},
		{"jwt.io sample", "x", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", ""},
		{"generic password", "settings.py", `DB_PASSWORD = "` + testsecret.Password(20) + `"`, "generic-password"},
		{"password placeholder", "settings.py", `password = "changeme123"`, ""},
		{"password env ref", "settings.py", `password: "${DB_PASSWORD}"`, ""},
		{"your token", "README", `api_key = "<your-api-key-goes-here>"`, ""},
		{"xxxx", "README", `token: "xxxxxxxxxxxxxxxxxxxxxxxx"`, ""},
		{"url creds", "app.yaml", "url: postgres://app:" + testsecret.Alnum(16) + "@db:5432/app", "url-credentials"},
		{"dotenv", "srv/.env", "API_TOKEN=" + testsecret.Alnum(24), "dotenv-secret"},
		{"properties password", "app/application.properties", "spring.datasource.password=" + testsecret.Password(14), "config-file-secret"},
		{"yaml password", "etc/app/config.yaml", "db:\n  password: " + testsecret.Password(14) + "\n", "config-file-secret"},
		{"yaml secret name", "etc/app/config.yaml", "secret_name: db-credentials-v2\ntoken_url: https://auth.example.net/oauth2/token\n", ""},
		{"yaml password ref", "etc/app/config.yaml", "password: ${DB_PASSWORD}\n", ""},
		{"yaml token after password line", "etc/app/config.yaml", "password: ${DB_PASSWORD}\napi_token: " + testsecret.Password(24) + "\n", "config-file-secret"},
		{"netrc", "root/.netrc", "machine git.example.net\n  login ci\n  password " + testsecret.Password(16) + "\n", "netrc-password"},
		{"pgpass", "root/.pgpass", "db:5432:app:app:" + testsecret.Password(16) + "\n", "pgpass"},
		{"gcp sa", "sa.json", `{"type": "service_account", "private_key_id": "` + testsecret.Hex(40) + `"}`, "gcp-service-account"},
		{"plain text", "x", "the password is stored in vault; see docs", ""},
		{"rfc 6749 basic example", "x", "Authorization: Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW", ""},
		{"basic auth", "x", "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("deploy:"+testsecret.Alnum(20))), "basic-auth-header"},
		{"code identifier", "bin/node", "exports2.CONNECTION_TOKEN_CHARS = exports2.HEADER_CHARS;", ""},
		{"maven example", "etc/maven/settings.xml", "<password>proxypass</password>", ""},
		{"url spelled password", "url_test.go", `"http://jane:p%40ssword@google.com"`, ""},
		{"square in base64 blob", "x", "AAAA" + "EAAA" + strings.Repeat("QUJD", 15) + "+x", ""},
	}
	e := engine(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.NewScanner().ScanBytes([]byte(tt.text), tt.file)
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("want no finding, got %v; input %s", ids(got), testsecret.Shape(tt.text))
				}
				return
			}
			for _, m := range got {
				if m.Rule.ID == tt.want {
					return
				}
			}
			// The values are generated: say their shape, never the value.
			t.Fatalf("want %s, got %v; input %s", tt.want, ids(got), testsecret.Shape(tt.text))
		})
	}
}

// A secret straddling the 1 MiB chunk boundary, far into a stream with no
// newline, is still found, with the right offset.
func TestChunkBoundary(t *testing.T) {
	e := engine(t)
	tok := testsecret.GitHubPAT()
	ats := []int{1<<20 - 70000, 1<<20 - 65536 - 10, 1<<20 - 3, 3 << 20}
	// Where each chunk's search stops (chunk + look-behind into the
	// stream, then one chunk further each time): a keyword across it is
	// found once, by one chunk or the next.
	for _, cut := range []int{1<<20 + 1<<10, 2<<20 + 1<<10} {
		for d := -6; d <= 2; d++ {
			ats = append(ats, cut+d)
		}
	}
	for _, at := range ats {
		data := bytes.Repeat([]byte{'a'}, at)
		data = append(data, ' ')
		data = append(data, tok...)
		data = append(data, " end "...)
		data = append(data, bytes.Repeat([]byte{'b'}, 200<<10)...) // so that the stream goes on past the cut
		var got []rules.Match
		err := e.NewScanner().Scan(bytes.NewReader(data), "x", func(m rules.Match) { got = append(got, m) })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Offset != int64(at+1) || string(got[0].Secret.Reveal()) != tok {
			t.Fatalf("at %d: got %d matches", at, len(got))
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := rules.Secret(testsecret.GitHubPAT())
	for _, f := range []string{"%v", "%s", "%q", "%x", "%+v", "%#v", "%d"} {
		if out := fmt.Sprintf(f, s); strings.Contains(out, "_") {
			t.Errorf("%s printed %q", f, out)
		}
	}
	if p := s.Preview(); !strings.HasSuffix(p, "(40)") || len([]rune(p)) > 9 {
		t.Errorf("preview %q", p)
	}
}

func FuzzScan(f *testing.F) {
	f.Add([]byte("token = ghp_abc"), ".env")
	f.Add([]byte("-----BEGIN PRIVATE"+" KEY-----\nAAAA\n-----END"), "k")
	f.Add([]byte("eyJhbGciOiJub25lIn0.eyJ4IjoxfQ."), "x")
	e, err := rules.Default()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		sc := e.NewScanner()
		for _, m := range sc.ScanBytes(data, name) {
			if m.Offset < 0 || m.Offset > int64(len(data)) {
				t.Fatalf("offset %d out of range", m.Offset)
			}
			if len(m.Secret) > 0 && !bytes.Contains(data, m.Secret.Reveal()) {
				t.Fatal("secret not in input")
			}
		}
	})
}

// BenchmarkScan runs over layer-like content: log and source text and
// random binary, with no secrets (the common case).
func BenchmarkScan(b *testing.B) {
	e := engine(b)
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("info request served GET /api/v1/items 200 user cache miss latency ms config loaded module import function return value error nil package main")
	var buf bytes.Buffer
	for buf.Len() < 8<<20 {
		if rng.IntN(3) == 0 {
			for i := 0; i < 4096; i++ {
				buf.WriteByte(byte(rng.Uint32()))
			}
			continue
		}
		for i := 0; i < 50; i++ {
			for w := 0; w < 12; w++ {
				buf.WriteString(words[rng.IntN(len(words))] + " ")
			}
			buf.WriteString("\n")
		}
	}
	data := buf.Bytes()
	sc := e.NewScanner()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = sc.Scan(bytes.NewReader(data), "data/f.log", func(rules.Match) {})
	}
}

// BenchmarkScanKeywordDense is the worst case: keywords on every line.
func BenchmarkScanKeywordDense(b *testing.B) {
	e := engine(b)
	var buf bytes.Buffer
	for buf.Len() < 8<<20 {
		buf.WriteString("func handler(w http.ResponseWriter, r *http.Request) { token := r.Header.Get(\"X-Token\"); log.Printf(\"password reset for %s\", user) }\n")
		buf.WriteString("0123456789abcdef ZZZZ qwerty uiop asdf ghjk lzxc vbnm QWERTY UIOP ASDF GHJK LZXC VBNM\n")
	}
	data := buf.Bytes()
	sc := e.NewScanner()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = sc.Scan(bytes.NewReader(data), "src/main.go", func(rules.Match) {})
	}
}

func BenchmarkDefault(b *testing.B) {
	// First-use cost of the engine (parsing and compiling every rule), paid
	// only by lint, never at package init.
	rs, _ := rules.All()
	for i := 0; i < b.N; i++ {
		if _, err := rules.New(rs); err != nil {
			b.Fatal(err)
		}
	}
}

// The file-name index agrees with each rule's own glob matching.
func TestFileIndex(t *testing.T) {
	e := engine(t)
	names := []string{"home/u/.npmrc", "srv/.env", "srv/.env.production", "app/prod.env", "x/terraform.tfstate", "a/b.auto.tfvars",
		"root/.aws/credentials", "k.p12", "store.jks", "etc/shadow", "etc/app/config.yaml", "x/settings.xml", "README.md", ".kube/config", "id_rsa"}
	for _, n := range names {
		var want []string
		for _, r := range e.Rules() {
			if len(r.Files) > 0 && r.MatchesFile(n) {
				want = append(want, r.ID)
			}
		}
		var got []string
		for _, r := range append(e.FileRules(n), e.PathRules(n)...) {
			got = append(got, r.ID)
		}
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: index %v, globs %v", n, got, want)
		}
	}
}
