package onepassword

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/opentracing/opentracing-go"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/secretbroker/secretbroker/internal/testenv/opconnect"
	"github.com/secretbroker/secretbroker/providers"
)

// fakeValue makes a clearly fake secret, different on every run.
func fakeValue(t testing.TB, what string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("fake-%s-%x", what, b)
}

type fixture struct {
	srv                         *opconnect.Server
	token                       string
	password, apiKey, adminPW   string
	sectioned, otpSeed, fileTxt string
	pkcs8                       []byte
	prod, staging, secret       *opconnect.Vault
	db                          *opconnect.Item
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{token: fakeValue(t, "connect-token")}
	f.srv = opconnect.New(f.token)
	t.Cleanup(f.srv.Close)
	f.password, f.apiKey, f.adminPW, f.sectioned = fakeValue(t, "pw"), fakeValue(t, "key"), fakeValue(t, "admin"), fakeValue(t, "sec")
	seed := make([]byte, 20)
	rand.Read(seed)
	f.otpSeed = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)
	f.fileTxt = fakeValue(t, "file") + "\n"
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	f.pkcs8 = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE" + " KEY", Bytes: der})

	f.prod = f.srv.AddVault("Prod")
	f.staging = f.srv.AddVault("Staging")
	f.secret = f.srv.AddVault("Finance")
	f.db = f.prod.AddItem(&opconnect.Item{Title: "Database", Sections: []opconnect.Section{{Label: "Admin"}, {Label: "Replica"}},
		Fields: []opconnect.Field{
			{Label: "username", Purpose: "USERNAME", Value: "app"},
			{Label: "password", Purpose: "PASSWORD", Type: "CONCEALED", Value: f.password},
			{Label: "password", Type: "CONCEALED", Value: f.adminPW, SectionID: "@0"},
			{Label: "password", Type: "CONCEALED", Value: f.sectioned, SectionID: "@1"},
			{Label: "one-time password", Type: "OTP", Value: "otpauth://totp/db?secret=" + f.otpSeed + "&issuer=fake", SectionID: "@0"},
			{Label: "seed", Type: "OTP", Value: f.otpSeed},
			{Label: "host", Value: "db.internal"},
			{Label: "dup", Value: "a", SectionID: "@0"},
			{Label: "dup", Value: "b", SectionID: "@1"},
		},
		Files: []opconnect.File{{Name: "ca.pem", Content: []byte(f.fileTxt)}},
	})
	// section ids are only known after AddItem; point the "@n" fields at them
	for i := range f.db.Fields {
		if s := f.db.Fields[i].SectionID; strings.HasPrefix(s, "@") {
			f.db.Fields[i].SectionID = f.db.Sections[s[1]-'0'].ID
		}
	}
	f.prod.AddItem(&opconnect.Item{Title: "Stripe", Category: "API_CREDENTIAL", Fields: []opconnect.Field{{Label: "publishable-key", Value: f.apiKey}}})
	f.prod.AddItem(&opconnect.Item{Title: "deploy key", Category: "SSH_KEY", Fields: []opconnect.Field{{Label: "private key", Type: "SSHKEY", Value: string(f.pkcs8)}}})
	f.prod.AddItem(&opconnect.Item{Title: "twin"})
	f.prod.AddItem(&opconnect.Item{Title: "twin"})
	return f
}

func (f *fixture) env(extra map[string]string) providers.Env {
	vars := map[string]string{EnvConnectHost: f.srv.URL, EnvConnectToken: f.token}
	for k, v := range extra {
		vars[k] = v
	}
	return providers.Env{Getenv: func(k string) string { return vars[k] }}
}

func parse(t *testing.T, refs ...string) []providers.Ref {
	t.Helper()
	var out []providers.Ref
	for _, s := range refs {
		r, err := providers.ParseRef(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func newProvider(t *testing.T, env providers.Env) providers.Provider {
	t.Helper()
	p, err := New(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConnectFetch(t *testing.T) {
	f := newFixture(t)
	p := newProvider(t, f.env(nil))
	fixed := time.Now()
	now = func() time.Time { return fixed }
	t.Cleanup(func() { now = time.Now })
	code, _ := totp.GenerateCode(f.otpSeed, fixed)

	tests := []struct{ ref, want string }{
		{"op://Prod/Database/password", f.password}, // the unsectioned field wins
		{"op://prod/database/PASSWORD", f.password}, // case-insensitive
		{"op://Prod/Database/Admin/password", f.adminPW},
		{"op://Prod/Database/replica/password", f.sectioned},
		{"op://Prod/Database/" + f.db.Sections[1].ID + "/password", f.sectioned},
		{"op://Prod/Database/Admin/one-time password?attribute=otp", code},
		{"op://Prod/Database/seed?attribute=otp", code},
		{"op://Prod/Database/password?attribute=type", "concealed"},
		{"op://Prod/Database/username?attribute=purpose", "username"},
		{"op://Prod/Database/host?attribute=id", f.db.Fields[6].ID},
		{"op://Prod/Database/ca.pem", f.fileTxt},
		{"op://Prod/Database/ca.pem?attribute=content", f.fileTxt},
		{"op://Prod/Database/ca.pem?attribute=name", "ca.pem"},
		{"op://Prod/Database/ca.pem?attribute=size", fmt.Sprint(len(f.fileTxt))},
		{"op://Prod/Stripe/publishable-key", f.apiKey},
		{"op://" + f.prod.ID + "/" + f.db.ID + "/" + f.db.Fields[1].ID, f.password}, // all by id
	}
	var refs []string
	for _, tt := range tests {
		refs = append(refs, tt.ref)
	}
	res := p.Fetch(context.Background(), parse(t, refs...))
	for i, tt := range tests {
		if res[i].Err != nil {
			t.Errorf("%s: %v", tt.ref, res[i].Err)
			continue
		}
		if got := string(res[i].Secret.Value.Reveal()); got != tt.want {
			t.Errorf("%s: got %d bytes, not the expected value", tt.ref, len(got))
		}
	}
	// One vault lookup per vault (the id one included), one read per item.
	var vaultLookups, itemReads int
	for _, r := range f.srv.Requests() {
		if strings.HasPrefix(r, "GET /v1/vaults?filter=") {
			vaultLookups++
		}
		if strings.Contains(r, "/items/") && !strings.Contains(r, "/files/") {
			itemReads++
		}
	}
	if vaultLookups != 1 {
		t.Errorf("%d vault lookups by title, want 1: %q", vaultLookups, f.srv.Requests())
	}
	if itemReads > 3 { // Database (by title, and by id through another ref), Stripe
		t.Errorf("%d item reads, want at most 3: %q", itemReads, f.srv.Requests())
	}

	// A second Fetch (the broker's refresh) reuses the ids: no title lookups.
	before := len(f.srv.Requests())
	res = p.Fetch(context.Background(), parse(t, "op://Prod/Database/password"))
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	for _, r := range f.srv.Requests()[before:] {
		if strings.Contains(r, "filter=") {
			t.Errorf("second fetch looked a name up again: %s", r)
		}
	}
}

func TestConnectOpenSSH(t *testing.T) {
	f := newFixture(t)
	p := newProvider(t, f.env(nil))
	res := p.Fetch(context.Background(), parse(t, "op://Prod/deploy key/private key?ssh-format=openssh", "op://Prod/deploy key/private key"))
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatal(res[0].Err, res[1].Err)
	}
	if got := string(res[0].Secret.Value.Reveal()); !strings.HasPrefix(got, "-----BEGIN OPENSSH PRIVATE"+" KEY-----") {
		t.Errorf("ssh-format=openssh did not give an OpenSSH key (got %d bytes)", len(got))
	}
	if string(res[1].Secret.Value.Reveal()) != string(f.pkcs8) {
		t.Error("without ssh-format the key should be returned as stored")
	}
}

func TestConnectErrors(t *testing.T) {
	f := newFixture(t)
	p := newProvider(t, f.env(nil))
	tests := []struct {
		ref  string
		kind providers.Kind
		want []string
	}{
		{"op://Nope/Database/password", providers.KindNotFound, []string{`no vault "Nope"`, `"Finance", "Prod", "Staging"`}},
		{"op://Prod/Nope/password", providers.KindNotFound, []string{`no item "Nope" in vault "Prod"`, `"Database"`, `"Stripe"`}},
		{"op://Prod/Database/nope", providers.KindNotFound, []string{`no field or file "nope"`, `"password"`, `"username"`, `files: "ca.pem"`}},
		{"op://Prod/Database/Nope/password", providers.KindNotFound, []string{`no section "Nope"`, `"Admin", "Replica"`}},
		{"op://Prod/Database/dup", providers.KindInvalid, []string{`2 fields`, "section"}},
		{"op://Prod/twin/x", providers.KindInvalid, []string{`2 items`, "by its id"}},
		{"op://Prod/Database/password?attribute=otp", providers.KindInvalid, []string{"one-time password field", "concealed"}},
		{"op://Prod/Database/password?attribute=size", providers.KindInvalid, []string{"applies to file attachments"}},
		{"op://Prod/Database/ca.pem?attribute=purpose", providers.KindInvalid, []string{"applies to fields"}},
		{"op://Prod/Database/password?ssh-format=openssh", providers.KindInvalid, []string{"SSH private key"}},
	}
	var refs []string
	for _, tt := range tests {
		refs = append(refs, tt.ref)
	}
	res := p.Fetch(context.Background(), parse(t, refs...))
	for i, tt := range tests {
		err := res[i].Err
		if err == nil {
			t.Errorf("%s: no error", tt.ref)
			continue
		}
		if k := providers.KindOf(err); k != tt.kind {
			t.Errorf("%s: kind %v, want %v (%v)", tt.ref, k, tt.kind, err)
		}
		msg := err.Error()
		for _, w := range append(tt.want, tt.ref) {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q does not contain %q", tt.ref, msg, w)
			}
		}
		for _, secret := range []string{f.password, f.adminPW, f.sectioned, f.apiKey, f.otpSeed, f.token} {
			if strings.Contains(msg, secret) {
				t.Errorf("%s: error leaks a secret value", tt.ref)
			}
		}
	}
}

func TestConnectBadToken(t *testing.T) {
	f := newFixture(t)
	p := newProvider(t, f.env(map[string]string{EnvConnectToken: "fake-wrong-token"}))
	res := p.Fetch(context.Background(), parse(t, "op://Prod/Database/password"))
	err := res[0].Err
	if providers.KindOf(err) != providers.KindDenied || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), EnvConnectToken) {
		t.Fatalf("got %v, want denied naming 401 and %s", err, EnvConnectToken)
	}
	if strings.Contains(err.Error(), "fake-wrong-token") {
		t.Error("error shows the token")
	}
}

func TestConnectScope(t *testing.T) {
	f := newFixture(t)
	scoped := fakeValue(t, "scoped-token")
	f.srv.AddToken(scoped, f.staging.ID)
	p := newProvider(t, f.env(map[string]string{EnvConnectToken: scoped}))
	res := p.Fetch(context.Background(), parse(t, "op://"+f.prod.ID+"/Database/password", "op://Prod/Database/password"))
	if k := providers.KindOf(res[0].Err); k != providers.KindDenied || !strings.Contains(res[0].Err.Error(), "not in scope") {
		t.Errorf("vault out of scope by id: %v", res[0].Err)
	}
	if k := providers.KindOf(res[1].Err); k != providers.KindNotFound || !strings.Contains(res[1].Err.Error(), `"Staging"`) {
		t.Errorf("vault out of scope by name: %v", res[1].Err)
	}
}

func TestConnectRateLimit(t *testing.T) {
	backoff = 10 * time.Millisecond
	t.Cleanup(func() { backoff = 500 * time.Millisecond })
	f := newFixture(t)
	p := newProvider(t, f.env(nil))

	f.srv.FailNext(429, 429) // two refusals, then served: backing off succeeds
	res := p.Fetch(context.Background(), parse(t, "op://Prod/Database/password"))
	if res[0].Err != nil {
		t.Fatalf("after backing off: %v", res[0].Err)
	}

	f.srv.FailNext(429, 429, 429, 429, 429)
	res = p.Fetch(context.Background(), parse(t, "op://Prod/Stripe/publishable-key"))
	err := res[0].Err
	if err == nil || !strings.Contains(err.Error(), "rate-limited") || !strings.Contains(err.Error(), "backed off 3 time(s)") {
		t.Fatalf("got %v, want a rate-limit error saying it backed off", err)
	}
}

func TestConnectUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	env := providers.Env{Getenv: func(k string) string {
		return map[string]string{EnvConnectHost: "http://" + addr, EnvConnectToken: "fake-token"}[k]
	}}
	res := newProvider(t, env).Fetch(context.Background(), parse(t, "op://Prod/Database/password"))
	if k := providers.KindOf(res[0].Err); k != providers.KindUnreachable || !strings.Contains(res[0].Err.Error(), "cannot reach Connect at http://"+addr) {
		t.Fatalf("got %v (%v), want unreachable naming the host", res[0].Err, k)
	}
}

func TestConnectDeadline(t *testing.T) {
	f := newFixture(t)
	f.srv.SetDelay(1500 * time.Millisecond)
	p := newProvider(t, f.env(nil))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := p.Fetch(ctx, parse(t, "op://Prod/Database/password"))
	if k := providers.KindOf(res[0].Err); k != providers.KindTimeout {
		t.Fatalf("got %v, want timeout", res[0].Err)
	}
	if time.Since(start) > time.Second {
		t.Error("Fetch did not return at the deadline")
	}
}

func TestConnectOTPURIPeriod(t *testing.T) {
	// An otpauth URI with its own period and digits is honoured.
	f := newFixture(t)
	f.db.Fields = append(f.db.Fields, opconnect.Field{ID: opconnect.NewID(), Label: "otp8", Type: "OTP",
		Value: "otpauth://totp/x?secret=" + f.otpSeed + "&digits=8&period=60&algorithm=SHA256"})
	fixed := time.Now()
	now = func() time.Time { return fixed }
	t.Cleanup(func() { now = time.Now })
	res := newProvider(t, f.env(nil)).Fetch(context.Background(), parse(t, "op://Prod/Database/otp8?attribute=otp"))
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	want, _ := totp.GenerateCodeCustom(f.otpSeed, fixed, totp.ValidateOpts{Period: 60, Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA256})
	if string(res[0].Secret.Value.Reveal()) != want {
		t.Error("8-digit, 60 s, SHA-256 code does not match")
	}
}

// Making a Connect client must not start the SDK's Jaeger tracer (UDP spans
// and a sampling poller to localhost).
func TestConnectNoTracer(t *testing.T) {
	f := newFixture(t)
	newProvider(t, f.env(nil))
	if _, ok := opentracing.GlobalTracer().(opentracing.NoopTracer); !ok {
		t.Fatalf("global tracer is %T, want the no-op one", opentracing.GlobalTracer())
	}
}
