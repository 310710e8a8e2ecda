package scan_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/secretbroker/secretbroker/internal/dockertest"
	"github.com/secretbroker/secretbroker/lint/internal/testimage"
	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
	"github.com/secretbroker/secretbroker/lint/scan"
)

func scanImage(t *testing.T, cfg v1.Config, layers ...[]testimage.File) *scan.Result {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.tar")
	if err := testimage.DockerArchive(p, testimage.Image(cfg, layers...)); err != nil {
		t.Fatal(err)
	}
	res := scanTarget(t, "docker-archive:"+p)
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	return res
}

func describe(res *scan.Result) string {
	var b strings.Builder
	for _, f := range res.Findings {
		fmt.Fprintf(&b, "%s %s %s; ", f.RuleID, f.Path, f.Preview)
	}
	return b.String()
}

// Image config values are judged as values, not by the variable's name.
func TestImageConfigValues(t *testing.T) {
	clean := []string{
		"DB_PASSWORD_FILE=/run/secrets/db",
		"API_TOKEN_PATH=/var/run/secrets/token",
		"DB_PASSWORD=",
		"SECRET_KEY=",
		"AUTH_URL=https://auth.example.org/oauth/token",
		"VAULT_TOKEN_URL=http://vault:8200/v1/auth",
		"DB_PASSWORD_REF=vault://secret/data/db#password",
		"API_TOKEN=aws-sm://prod/api-token",
		"GITHUB_TOKEN=op://ci/github/token",
		"DB_SECRET=arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
		"CLIENT_SECRET_ID=7f3c9a2e41b84d0c",
		"SECRET_NAME=prod-db-password-2024",
	}
	res := scanImage(t, v1.Config{Env: clean}, []testimage.File{{Name: "etc/hostname", Body: "x\n"}})
	if len(res.Findings) > 0 {
		t.Fatalf("clean config values flagged: %s", describe(res))
	}
	res = scanImage(t, v1.Config{Env: []string{"API_TOKEN=" + testsecret.Password(24)}}, []testimage.File{{Name: "etc/hostname", Body: "x\n"}})
	if len(res.Findings) != 1 || !strings.Contains(res.Findings[0].Description, "image config") || strings.Contains(res.Findings[0].Description, ".env") {
		t.Fatalf("want one image-config finding: %+v", res.Findings)
	}
}

// Empty and placeholder files named like keys are not key material; a real
// key file is one finding, not one by name and one by content.
func TestKeyFiles(t *testing.T) {
	res := scanImage(t, v1.Config{}, []testimage.File{
		{Name: "root/.ssh/id_rsa", Body: ""},
		{Name: "home/a/.ssh/id_ed25519", Body: "\n"},
		{Name: "src/testdata/id_rsa", Body: "dummy\n"},
	})
	if len(res.Findings) > 0 {
		t.Fatalf("empty/placeholder key files flagged: %s", describe(res))
	}
	res = scanImage(t, v1.Config{}, []testimage.File{{Name: "root/.ssh/id_rsa", Body: testsecret.RSAKeyPEM()}})
	if len(res.Findings) != 1 {
		t.Fatalf("one key, want one finding: %s", describe(res))
	}
	if !strings.Contains(res.Findings[0].Note, "file name also matches ssh-private-key-file") {
		t.Errorf("note %q does not mention the name rule", res.Findings[0].Note)
	}
}

// One value is one finding per image, with its other locations listed.
func TestOneValueOnce(t *testing.T) {
	tok := testsecret.GitHubPAT()
	res := scanImage(t, v1.Config{}, []testimage.File{
		{Name: "api/v1/openapi.txt", Body: "token: " + tok + "\n"},
		{Name: "api/v2/openapi.txt", Body: "token: " + tok + "\n"},
		{Name: "api/v3/openapi.txt", Body: "\n\ntoken: " + tok + "\n"},
	})
	if len(res.Findings) != 1 {
		t.Fatalf("want 1 finding: %s", describe(res))
	}
	f := res.Findings[0]
	if f.Path != "api/v1/openapi.txt" || len(f.Locations) != 2 || f.Locations[1] != "layer 1 api/v3/openapi.txt:3" {
		t.Fatalf("finding %s locations %q", f.Path, f.Locations)
	}
}

// The project's own binaries, stripped and not, in images built FROM
// scratch by the Docker Engine the README's way, scan clean.
func TestOwnImagesScanClean(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the project's binaries")
	}
	dockertest.Require(t)
	dir := t.TempDir()
	for _, p := range []string{"inject", "broker"} {
		dockertest.BuildStatic(t, "./cmd/"+p, dir, p+"-stripped")
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, p), "./cmd/"+p)
		cmd.Dir = dockertest.ModuleRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", p, err, out)
		}
	}
	for _, v := range []string{"", "-stripped"} {
		df := fmt.Sprintf(`FROM scratch
COPY inject%[1]s /usr/local/bin/inject
COPY broker%[1]s /usr/local/bin/broker
ENV DB_PASSWORD_FILE=/run/secrets/db_password \
    API_TOKEN_FILE=/run/secrets/api_token \
    INJECT_SPEC=/etc/inject/spec.yaml
ENTRYPOINT ["/usr/local/bin/inject", "--"]
CMD ["/app"]
`, v)
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
		tag := fmt.Sprintf("secretbroker-lint-own%s:%d", v, os.Getpid())
		dockertest.Build(t, dir, tag)
		res := scanTarget(t, "docker-daemon:"+tag)
		if len(res.Errors) > 0 || res.Incomplete() {
			t.Fatalf("%s: incomplete: %v %+v", tag, res.Errors, res.Skips)
		}
		if len(res.Findings) > 0 {
			t.Fatalf("%s: own image flagged: %s", tag, describe(res))
		}
	}
}

// A damaged archive in a test location is a note; elsewhere the scan is
// incomplete.
func TestDamagedFixtureArchive(t *testing.T) {
	bad := "PK\x03\x04" + strings.Repeat("\x00", 64)
	res := scanImage(t, v1.Config{}, []testimage.File{{Name: "usr/lib/go/src/archive/zip/testdata/crc32-not-streamed.zip", Body: bad}})
	if res.Incomplete() || len(res.Skips) != 1 || !strings.Contains(res.Skips[0].Reason, "a note") {
		t.Fatalf("fixture: %+v", res.Skips)
	}
	p := filepath.Join(t.TempDir(), "img.tar")
	if err := testimage.DockerArchive(p, testimage.Image(v1.Config{}, []testimage.File{{Name: "opt/app/data.zip", Body: bad}})); err != nil {
		t.Fatal(err)
	}
	if res := scanTarget(t, "docker-archive:"+p); !res.Incomplete() {
		t.Fatalf("damaged archive outside a test location: %+v", res.Skips)
	}
}

// Key material stored encoded is found in files and in the image config, and
// the finding says where the encoding was.
func TestEncodedKeyMaterial(t *testing.T) {
	key := testsecret.ECKeyPEM()
	b64 := base64.StdEncoding.EncodeToString([]byte(key))
	res := scanImage(t, v1.Config{Env: []string{"TLS_KEY=" + b64}}, []testimage.File{
		{Name: "app/secret.yaml", Body: "kind: Secret\ntype: kubernetes.io/tls\ndata:\n  tls.key: " + b64 + "\n"},
	})
	var inFile, inConfig bool
	for _, f := range res.Findings {
		if f.RuleID != "private-key-pkcs8" {
			continue
		}
		inFile = inFile || f.Path == "app/secret.yaml" && strings.Contains(f.Note, "base64 at line 4")
		inConfig = inConfig || f.Path == "config.Env[0]" && strings.Contains(f.Note, "base64")
		for _, o := range f.Locations {
			inFile = inFile || strings.Contains(o, "app/secret.yaml")
			inConfig = inConfig || strings.Contains(o, "config.Env[0]")
		}
	}
	if !inFile || !inConfig {
		t.Fatalf("encoded key: in file %v, in config %v: %s", inFile, inConfig, describe(res))
	}
}

// A key base64-encoded in a Kubernetes Secret's data: is one secret, so one
// finding: the decoded key's (its kind), naming the encoding and the
// Secret rule it absorbed. A data: value that holds no key stays the Secret
// rule's finding. Keys are generated here.
func TestEncodedSecretOneFinding(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	secret := func(key, value string) string {
		return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\ndata:\n  " + key + ": " + value + "\n"
	}
	res := scanImage(t, v1.Config{}, []testimage.File{
		{Name: "deploy/rsa.yaml", Body: secret("tls.key", b64(testsecret.RSAKeyPEM()))},
		{Name: "deploy/ec.yaml", Body: secret("tls.key", b64(testsecret.ECKeyPEM()))},
		{Name: "deploy/ssh.yaml", Body: secret("ssh-privatekey", b64(testsecret.OpenSSHKeyPEM(false)))},
		{Name: "deploy/token.yaml", Body: secret("payload", b64(testsecret.Alnum(40)))},
	})
	want := map[string]string{
		"deploy/rsa.yaml": "private-key-rsa", "deploy/ec.yaml": "private-key-pkcs8",
		"deploy/ssh.yaml": "private-key-openssh", "deploy/token.yaml": "kubernetes-secret-yaml",
	}
	got := map[string]int{}
	for _, f := range res.Findings {
		got[f.Path]++
		if f.RuleID != want[f.Path] {
			t.Errorf("%s: rule %s, want %s", f.Path, f.RuleID, want[f.Path])
			continue
		}
		if f.RuleID != "kubernetes-secret-yaml" && (!strings.Contains(f.Note, "base64 at line 6") || !strings.Contains(f.Note, "kubernetes-secret-yaml")) {
			t.Errorf("%s: note %q names neither the encoding nor the Secret rule", f.Path, f.Note)
		}
	}
	for p := range want {
		if got[p] != 1 {
			t.Errorf("%s: %d findings, want 1: %s", p, got[p], describe(res))
		}
	}
}
