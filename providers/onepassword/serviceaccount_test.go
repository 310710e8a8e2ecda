package onepassword

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/providers"
)

// fakeSDK stands in for 1Password's SDK: it answers ResolveAll from a table,
// as the SDK's core would, and records the calls.
type fakeSDK struct {
	listings int
	results  map[string]sdkResult
	failWith []error // errors for the next ResolveAll calls
	calls    [][]string
	vaults   []named
	items    map[string][]named
	item     itemNames
}

func (f *fakeSDK) ResolveAll(_ context.Context, refs []string) (map[string]sdkResult, error) {
	f.calls = append(f.calls, refs)
	if len(f.failWith) > 0 {
		err := f.failWith[0]
		f.failWith = f.failWith[1:]
		return nil, err
	}
	out := map[string]sdkResult{}
	for _, r := range refs {
		if res, ok := f.results[r]; ok {
			out[r] = res
		}
	}
	return out, nil
}
func (f *fakeSDK) Vaults(context.Context) ([]named, error)                 { f.listings++; return f.vaults, nil }
func (f *fakeSDK) Items(_ context.Context, v string) ([]named, error)      { return f.items[v], nil }
func (f *fakeSDK) Item(context.Context, string, string) (itemNames, error) { return f.item, nil }

func saProvider(t *testing.T, f *fakeSDK) providers.Provider {
	t.Helper()
	old := newSDKClient
	newSDKClient = func(context.Context, string) (sdkClient, error) { return f, nil }
	t.Cleanup(func() { newSDKClient = old })
	p, err := New(context.Background(), providers.Env{Getenv: func(k string) string {
		return map[string]string{EnvServiceAccountToken: "fake-sa-token"}[k]
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServiceAccountResolveAll(t *testing.T) {
	f := &fakeSDK{results: map[string]sdkResult{
		"op://Prod/Database/password":                               {Secret: "fake-pw"},
		"op://Prod/GitHub/Security/one-time password?attribute=otp": {Secret: "123456"},
		"op://Prod/ssh/private key?ssh-format=openssh":              {Secret: "fake-openssh"},
	}}
	p := saProvider(t, f)
	refs := parse(t,
		"op://Prod/Database/password",
		"op://Prod/GitHub/Security/one-time password?attribute=OTP",
		"op://Prod/ssh/private key?ssh-format=openssh",
	)
	res := p.Fetch(context.Background(), refs)
	want := []string{"fake-pw", "123456", "fake-openssh"}
	for i := range refs {
		if res[i].Err != nil || string(res[i].Secret.Value.Reveal()) != want[i] {
			t.Errorf("%s: %v", refs[i], res[i].Err)
		}
	}
	if len(f.calls) != 1 || len(f.calls[0]) != 3 {
		t.Fatalf("want one ResolveAll with 3 references, got %q", f.calls)
	}
}

func TestServiceAccountErrors(t *testing.T) {
	f := &fakeSDK{
		results: map[string]sdkResult{
			"op://Nope/i/f":                            {Failed: true, ErrType: "vaultNotFound"},
			"op://Prod/Nope/f":                         {Failed: true, ErrType: "itemNotFound"},
			"op://Prod/Database/nope":                  {Failed: true, ErrType: "fieldNotFound"},
			"op://Prod/Database/Nope/password":         {Failed: true, ErrType: "noMatchingSections"},
			"op://Prod/twin/f":                         {Failed: true, ErrType: "tooManyItems"},
			"op://Prod/Database/pw?attribute=otp":      {Failed: true, ErrType: "incompatibleTOTPQueryParameterField"},
			"op://Prod/Database/pw?ssh-format=openssh": {Failed: true, ErrType: "incompatibleSshKeyQueryParameterField"},
			"op://Prod/Database/bin.dat":               {Failed: true, ErrType: "unsupportedFileFormat"},
			"op://Prod/Database/weird":                 {Failed: true, ErrType: "parsing", ErrMsg: "bad thing"},
			"op://Prod/Database/other":                 {Failed: true, ErrType: "other"},
		},
		vaults: []named{{"v1", "Prod"}, {"v2", "Staging"}},
		items:  map[string][]named{"v1": {{"i1", "Database"}, {"i2", "Stripe"}}},
		item:   itemNames{Sections: []named{{"s1", "Admin"}}, Fields: []string{"username", "password"}, Files: []string{"ca.pem"}},
	}
	p := saProvider(t, f)
	tests := []struct {
		ref  string
		kind providers.Kind
		want []string
	}{
		{"op://Nope/i/f", providers.KindNotFound, []string{`no vault "Nope"`, `"Prod", "Staging"`}},
		{"op://Prod/Nope/f", providers.KindNotFound, []string{`no item "Nope"`, `"Database", "Stripe"`}},
		{"op://Prod/Database/nope", providers.KindNotFound, []string{`no field or file "nope"`, `"password", "username"`, `"ca.pem"`}},
		{"op://Prod/Database/Nope/password", providers.KindNotFound, []string{`no section "Nope"`, `"Admin"`}},
		{"op://Prod/twin/f", providers.KindInvalid, []string{"by its id"}},
		{"op://Prod/Database/pw?attribute=otp", providers.KindInvalid, []string{"one-time password field"}},
		{"op://Prod/Database/pw?ssh-format=openssh", providers.KindInvalid, []string{"private key"}},
		{"op://Prod/Database/bin.dat", providers.KindInvalid, []string{"text file"}},
		{"op://Prod/Database/weird", providers.KindInvalid, []string{"bad thing"}},
		{"op://Prod/Database/other", providers.KindOther, []string{"other"}},
		{"op://Prod/Database/missing", providers.KindOther, []string{"no result"}},
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
		for _, w := range append(tt.want, tt.ref) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not contain %q", tt.ref, err, w)
			}
		}
	}
}

func TestServiceAccountListsOnce(t *testing.T) {
	f := &fakeSDK{results: map[string]sdkResult{}, vaults: []named{{"v1", "Prod"}}}
	var refs []string
	for _, v := range []string{"A", "B", "C", "D"} {
		r := "op://" + v + "/i/f"
		f.results[r] = sdkResult{Failed: true, ErrType: "vaultNotFound"}
		refs = append(refs, r)
	}
	saProvider(t, f).Fetch(context.Background(), parse(t, refs...))
	if f.listings != 1 {
		t.Errorf("listed vaults %d times for 4 failures, want once", f.listings)
	}
}

func TestServiceAccountCallErrors(t *testing.T) {
	backoff = 5 * time.Millisecond
	t.Cleanup(func() { backoff = 500 * time.Millisecond })
	tests := []struct {
		name string
		errs []error
		kind providers.Kind
		want string
	}{
		{"bad token", []error{errors.New("invalid service account token: fake-sa-token is malformed")}, providers.KindDenied, EnvServiceAccountToken},
		{"network", []error{errors.New("error sending request for url (https://my.1password.com/api/v2/auth)")}, providers.KindUnreachable, "cannot reach 1Password"},
		{"rate limited", []error{&sdkRateLimited{"rate limit exceeded"}, &sdkRateLimited{"rate limit exceeded"}, &sdkRateLimited{"rate limit exceeded"}, &sdkRateLimited{"rate limit exceeded"}}, providers.KindUnreachable, "backed off 3 time(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSDK{failWith: tt.errs}
			res := saProvider(t, f).Fetch(context.Background(), parse(t, "op://a/b/c", "op://a/b/d"))
			for _, r := range res {
				if providers.KindOf(r.Err) != tt.kind || !strings.Contains(r.Err.Error(), tt.want) {
					t.Errorf("got %v (%v), want %v containing %q", r.Err, providers.KindOf(r.Err), tt.kind, tt.want)
				}
				if strings.Contains(r.Err.Error(), "fake-sa-token") {
					t.Error("error shows the token")
				}
			}
		})
	}
	// Rate limited twice, then answered: backing off succeeds.
	f := &fakeSDK{failWith: []error{&sdkRateLimited{"limited"}, &sdkRateLimited{"limited"}}, results: map[string]sdkResult{"op://a/b/c": {Secret: "fake"}}}
	if res := saProvider(t, f).Fetch(context.Background(), parse(t, "op://a/b/c")); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
}

func TestServiceAccountSetupFails(t *testing.T) {
	old := newSDKClient
	newSDKClient = func(context.Context, string) (sdkClient, error) {
		return nil, errors.New("error initializing client: Unauthorized: invalid bearer token")
	}
	t.Cleanup(func() { newSDKClient = old })
	p, _ := New(context.Background(), providers.Env{Getenv: func(k string) string { return map[string]string{EnvServiceAccountToken: "fake-sa"}[k] }})
	res := p.Fetch(context.Background(), parse(t, "op://a/b/c"))
	if providers.KindOf(res[0].Err) != providers.KindDenied {
		t.Fatalf("got %v, want denied", res[0].Err)
	}
}

// TestServiceAccountLive resolves a real reference with a real service
// account when both variables are set.
func TestServiceAccountLive(t *testing.T) {
	tok, ref := os.Getenv(EnvServiceAccountToken), os.Getenv("OP_TEST_REFERENCE")
	if tok == "" || ref == "" || newSDKClient == nil {
		t.Skip("skipped: set OP_SERVICE_ACCOUNT_TOKEN and OP_TEST_REFERENCE (an op:// reference that service account can read) to run against 1Password (and build without the noonepassword_sdk tag)")
	}
	r := parse(t, ref)
	p, err := New(context.Background(), providers.Env{Getenv: os.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := p.Fetch(ctx, r)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	t.Logf("resolved %s: %d bytes", ref, res[0].Secret.Value.Len())
}

// TestServiceAccountMalformedTokenRealSDK runs 1Password's real SDK (its
// core compiles in a few seconds, no network needed) with a token that is
// not a service account token, and checks the error a person gets.
func TestServiceAccountMalformedTokenRealSDK(t *testing.T) {
	if newSDKClient == nil {
		t.Skip("built with noonepassword_sdk")
	}
	if testing.Short() {
		t.Skip("compiles the SDK's WebAssembly core (seconds); skipped with -short")
	}
	p, err := New(context.Background(), providers.Env{Getenv: func(k string) string {
		return map[string]string{EnvServiceAccountToken: "ops_fakeNotAToken"}[k]
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res := p.Fetch(ctx, parse(t, "op://Prod/Database/password"))
	err = res[0].Err
	if providers.KindOf(err) != providers.KindDenied || !strings.Contains(err.Error(), EnvServiceAccountToken) {
		t.Fatalf("got %v (%v), want denied naming %s", err, providers.KindOf(err), EnvServiceAccountToken)
	}
	if strings.Contains(err.Error(), "ops_fakeNotAToken") {
		t.Error("error shows the token")
	}
	t.Log(err)
}
