package onepassword

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/providers"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	os.WriteFile(tokFile, []byte("fake-file-token\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	twoLines := filepath.Join(dir, "two")
	os.WriteFile(twoLines, []byte("fake-a\nfake-b\n"), 0o600)

	tests := []struct {
		name    string
		cfg     map[string]any
		vars    map[string]string
		mode    Mode
		host    string
		token   string
		wantErr string
	}{
		{name: "service account from env", vars: map[string]string{EnvServiceAccountToken: "fake-sa"}, mode: ModeServiceAccount, token: "fake-sa"},
		{name: "token_file wins over env", cfg: map[string]any{"token_file": tokFile}, vars: map[string]string{EnvServiceAccountToken: "fake-sa"}, mode: ModeServiceAccount, token: "fake-file-token"},
		{name: "connect from env", vars: map[string]string{EnvConnectHost: "http://connect:8080/", EnvConnectToken: "fake-ct", EnvServiceAccountToken: "fake-sa"}, mode: ModeConnect, host: "http://connect:8080", token: "fake-ct"},
		{name: "connect from config wins", cfg: map[string]any{"connect": map[string]any{"host": "https://c.example", "token_file": tokFile}},
			vars: map[string]string{EnvConnectHost: "http://other", EnvConnectToken: "fake-ct"}, mode: ModeConnect, host: "https://c.example", token: "fake-file-token"},
		{name: "nothing", wantErr: "no 1Password credential"},
		{name: "connect without token", vars: map[string]string{EnvConnectHost: "http://c"}, wantErr: "needs an access token"},
		{name: "bad host", vars: map[string]string{EnvConnectHost: "connect:8080", EnvConnectToken: "x"}, wantErr: "want a URL"},
		{name: "unknown key", cfg: map[string]any{"tokenfile": "x"}, wantErr: "tokenfile"},
		{name: "missing file", cfg: map[string]any{"token_file": filepath.Join(dir, "nope")}, wantErr: "cannot read"},
		{name: "empty file", cfg: map[string]any{"token_file": empty}, wantErr: "is empty"},
		{name: "two lines", cfg: map[string]any{"token_file": twoLines}, wantErr: "more than one line"},
		{name: "connect token_file without host", cfg: map[string]any{"connect": map[string]any{"token_file": tokFile}}, wantErr: "no Connect host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(providers.Env{Config: tt.cfg, Getenv: func(k string) string { return tt.vars[k] }})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want error containing %q", err, tt.wantErr)
				}
				if providers.KindOf(err) != providers.KindConfig {
					t.Errorf("kind %v, want config", providers.KindOf(err))
				}
				if strings.Contains(err.Error(), "fake-") {
					t.Errorf("error shows a token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Mode != tt.mode || s.Host != tt.host || s.token != tt.token {
				t.Errorf("got mode %q host %q token ok=%v", s.Mode, s.Host, s.token == tt.token)
			}
		})
	}
}

// The factory must not start the SDK: only a Fetch does.
func TestNewIsLazy(t *testing.T) {
	calls := 0
	old := newSDKClient
	newSDKClient = func(context.Context, string) (sdkClient, error) { calls++; return &fakeSDK{}, nil }
	t.Cleanup(func() { newSDKClient = old })
	p, err := New(context.Background(), providers.Env{Getenv: func(k string) string { return map[string]string{EnvServiceAccountToken: "fake-sa"}[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Fatal("New started the SDK")
	}
	p.Fetch(context.Background(), parse(t, "op://a/b/c"))
	p.Fetch(context.Background(), parse(t, "op://a/b/c"))
	if calls != 1 {
		t.Fatalf("SDK started %d times, want once", calls)
	}
}
