package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func load(t testing.TB, config string, env []string, args ...string) (*Spec, error) {
	t.Helper()
	dir := t.TempDir()
	f := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(f)
	addRunFlags(f)
	if config != "" {
		p := filepath.Join(dir, "inject.yaml")
		os.WriteFile(p, []byte(config), 0o600)
		args = append([]string{"--config", p}, args...)
	}
	if err := f.Parse(args); err != nil {
		t.Fatal(err)
	}
	old := environ
	environ = func() []string { return env }
	defer func() { environ = old }()
	return Load(f)
}

// addRunFlags declares the flags of one command beside AddFlags's (a
// seam: TestStartSettings declares inject's run flags).
var addRunFlags = func(*pflag.FlagSet) {}

func TestDefaultsAndPrecedence(t *testing.T) {
	s, err := load(t, "dir: /from/file\ntimeout: 10s\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir != "/from/file" || !s.DirIsSet || s.Timeout != 10*time.Second {
		t.Fatalf("file: dir %q set %v timeout %v", s.Dir, s.DirIsSet, s.Timeout)
	}
	// INJECT_* are read from the loader's environment, not the process's.
	t.Setenv("INJECT_DIR", "/from/process")
	s, _ = load(t, "dir: /from/file\n", nil)
	if s.Dir != "/from/file" {
		t.Fatalf("INJECT_DIR was read past the environment seam: %q", s.Dir)
	}
	os.Unsetenv("INJECT_DIR")
	env := []string{"INJECT_DIR=/from/env", "INJECT_MAX_STALENESS=2m"}
	s, _ = load(t, "dir: /from/file\nmax_staleness: 1m\n", env)
	if s.Dir != "/from/env" || !s.DirIsSet || s.MaxStaleness != 2*time.Minute {
		t.Fatalf("INJECT_* should beat the file: dir %q set %v max_staleness %v", s.Dir, s.DirIsSet, s.MaxStaleness)
	}
	s, _ = load(t, "dir: /from/file\n", env, "--dir", "/from/flag")
	if s.Dir != "/from/flag" {
		t.Fatalf("the flag should beat INJECT_DIR: %q", s.Dir)
	}
	s, _ = load(t, "", []string{"INJECT_DIR="})
	if s.Dir != DefaultDir || s.DirIsSet {
		t.Fatalf("an empty INJECT_DIR counts as unset: %q set %v", s.Dir, s.DirIsSet)
	}
	s, _ = load(t, "", nil)
	if s.Dir != DefaultDir || s.DirIsSet || s.Timeout != 30*time.Second || len(s.EnvSchemes) != 3 {
		t.Fatalf("defaults: %+v", s)
	}
}

func TestSecretsAndEnvRefs(t *testing.T) {
	s, err := load(t, `
secrets:
  - name: db.password
    ref: vault://secret/app/db#password
    mode: "0440"
  - name: api
    ref: aws-sm://prod/api
    env: ""
    expose_as: API_TOKEN
    optional: true
`, []string{"STRIPE_KEY=op://Prod/Stripe/key", "URL=https://x", "INJECT_DIR=/x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Secrets) != 3 {
		t.Fatalf("got %d secrets", len(s.Secrets))
	}
	a, b, c := s.Secrets[0], s.Secrets[1], s.Secrets[2]
	if a.EnvVar != "DB_PASSWORD_FILE" || a.Mode != 0o440 || a.Ref.Canonical() != "vault://secret/app/db#password" {
		t.Errorf("secret 0: %+v", a)
	}
	if b.EnvVar != "" || b.ExposeAs != "API_TOKEN" || !b.Optional {
		t.Errorf("secret 1: %+v", b)
	}
	if c.Name != "stripe_key" || c.EnvVar != "STRIPE_KEY_FILE" || c.FromEnv != "STRIPE_KEY" || c.Where != "env STRIPE_KEY" {
		t.Errorf("env ref: %+v", c)
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	_, err := load(t, `
dir: relative
timeout: 10
env_schemes: [vault, s3]
strip_env: ["not a var"]
secrets:
  - name: ok
    ref: vault://secret/a
  - name: ok
    ref: "vault://secret/../b"
  - ref: vault://x
    mode: "0999"
templates:
  - source: missing.tmpl
    dest: ok
`, []string{"X=vault://"})
	var p Problems
	if !errors.As(err, &p) {
		t.Fatalf("want Problems, got %v", err)
	}
	for _, want := range []string{"dir:", "timeout:", "env_schemes:", "strip_env:", "secrets[1].ref:", "secrets[2].name: empty name", "secrets[2].mode:", "templates[0].source:", "env X:", "secrets[1]: secret file \"ok\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	// A top-level key no program knows is a warning (--strict: an error):
	// one file may serve another program too.
	cfg := "secrets:\n  - {name: a, ref: 'vault://x'}\ncolour: red\n"
	s, err := load(t, cfg, nil)
	if err != nil || len(s.Warnings) != 1 {
		t.Fatalf("warnings %v, err %v", s.Warnings, err)
	}
	if _, err := load(t, cfg, nil, "--strict"); err == nil || !strings.Contains(err.Error(), "colour: unknown key (--strict)") {
		t.Fatalf("--strict: %v", err)
	}
	// The broker's keys are known.
	if s, err := load(t, "refresh: 1m\nmax_staleness: 5m\nlisten: off\nwipe_on_exit: true\nsecrets: []\n", nil); err != nil || len(s.Warnings) != 0 {
		t.Fatalf("broker keys: warnings %v, err %v", s.Warnings, err)
	}
	// A top-level key close to a known one is a typo: an error that says
	// which key was meant (`secret:` would start the app with no secrets).
	_, err = load(t, "secret:\n  - {name: a, ref: 'vault://x'}\nrefreshh: 5m\n", nil)
	for _, want := range []string{"secret: unknown key; did you mean secrets?", "refreshh: unknown key; did you mean refresh?"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	// Inside an entry every unknown key is an error: no other program reads it.
	_, err = load(t, "secrets:\n  - {name: a, ref: 'vault://x', mod: '0400', enviroment: A, colour: red}\ntemplates:\n  - {source: t, dest: d, mdoe: '0400'}\n", nil)
	for _, want := range []string{
		"secrets[0].mod: unknown key; did you mean mode? (an entry takes env, expose_as, mode, name, optional, ref)",
		"secrets[0].enviroment: unknown key; did you mean env?",
		"secrets[0].colour: unknown key (an entry takes",
		"templates[0].mdoe: unknown key; did you mean mode? (an entry takes dest, mode, source)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

func TestTemplateChecks(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok.tmpl"), []byte(`pw={{ secret "a" }} b64={{ secret "a" | base64 }}`), 0o600)
	os.WriteFile(filepath.Join(dir, "bad.tmpl"), []byte(`{{ secret "nope" }}`), 0o600)
	os.WriteFile(filepath.Join(dir, "syntax.tmpl"), []byte(`{{ secret "a" `), 0o600)
	cfg := "secrets: [{name: a, ref: 'vault://x'}]\ntemplates:\n" +
		"  - {source: " + dir + "/ok.tmpl, dest: ok.conf}\n" +
		"  - {source: " + dir + "/bad.tmpl, dest: bad.conf}\n" +
		"  - {source: " + dir + "/syntax.tmpl, dest: syntax.conf}\n"
	_, err := load(t, cfg, nil)
	if err == nil || !strings.Contains(err.Error(), `templates[1].source: `) || !strings.Contains(err.Error(), `secret "nope" is not declared`) || !strings.Contains(err.Error(), "templates[2].source") || strings.Contains(err.Error(), "templates[0]") {
		t.Fatalf("got %v", err)
	}
	out, err := Render(Template{Text: `pw={{ secret "a" }} {{ secret "j" | json "/u" }}`}, func(n string) ([]byte, error) {
		return map[string][]byte{"a": []byte("x"), "j": []byte(`{"u":"y"}`)}[n], nil
	})
	if err != nil || string(out) != "pw=x y" {
		t.Fatalf("Render = %q, %v", out, err)
	}
}

// FuzzLoad feeds arbitrary config files to the loader: it must return a
// Spec or Problems, never panic.
func FuzzLoad(f *testing.F) {
	f.Add("secrets:\n  - name: a\n    ref: vault://secret/a#k\n")
	f.Add("dir: /x\ntemplates: [{source: a, dest: b}]\nsecrets: 3\n")
	f.Add("providers: {vault: 1}\nnotify: {signal: 3}\n")
	f.Add("timeout: [1]\nenv_schemes: vault\n")
	f.Fuzz(func(t *testing.T, cfg string) {
		s, err := load(t, cfg, nil)
		if err == nil && s == nil {
			t.Fatal("nil spec and nil error")
		}
		var p Problems
		if err != nil && !errors.As(err, &p) {
			t.Fatalf("error is not Problems: %T %v", err, err)
		}
	})
}

// A variable whose value looks like a reference with a misspelt scheme is
// a warning with the scheme meant (--strict: an error); ordinary URLs and
// schemes too short to judge are left alone.
func TestMisspeltEnvScheme(t *testing.T) {
	env := []string{"A=valut://secret/app#k", "B=VAULT://secret/app#k", "C=aws-ms://prod/db", "D=s3://bucket/key", "E=https://example.com", "F=file://x.yaml", "G=postgres://db/app", "H=po://v/i/f"}
	s, err := load(t, "", env)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(s.Warnings, "\n")
	for _, want := range []string{`env A: scheme "valut" is not one inject reads, so the value is passed on as it is; did you mean vault://?`, `env B: scheme "VAULT"`, `env C: scheme "aws-ms"`, "did you mean aws-sm://?"} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in warnings:\n%s", want, got)
		}
	}
	if len(s.Warnings) != 3 {
		t.Errorf("want 3 warnings (A, B, C), got:\n%s", got)
	}
	if strings.Contains(got, "secret/app") {
		t.Error("a warning quotes the value")
	}
	if _, err := load(t, "", env, "--strict"); err == nil || !strings.Contains(err.Error(), `env A: scheme "valut" is not one inject reads`) {
		t.Fatalf("--strict: %v", err)
	}
}

// TestProviderConcurrency: a block's concurrency is taken out of the block
// (each provider decodes only its own keys) and handed to the provider as
// a value; absent it is the default, and a bad one is a problem at its key.
func TestProviderConcurrency(t *testing.T) {
	s, err := load(t, "providers:\n  vault: {address: https://v:8200, concurrency: 32}\n  aws: {region: eu-west-1}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if env := s.ProviderEnv("vault"); env.InFlight() != 32 || env.Config["concurrency"] != nil || env.Config["address"] != "https://v:8200" {
		t.Errorf("vault env: in flight %d, config %v", env.InFlight(), env.Config)
	}
	if n := s.ProviderEnv("aws").InFlight(); n != 8 {
		t.Errorf("aws in flight %d, want the default 8", n)
	}
	for _, bad := range []string{"0", "-1", "many", "5000"} {
		_, err := load(t, "providers:\n  vault: {concurrency: "+bad+"}\n", nil)
		if err == nil || !strings.Contains(err.Error(), "providers.vault.concurrency") {
			t.Errorf("concurrency %s: %v", bad, err)
		}
	}
}
