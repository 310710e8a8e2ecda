package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/identity"
	"github.com/secretbroker/secretbroker/providers"
)

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func fetch(t *testing.T, p *Provider, refs ...string) []providers.Result {
	t.Helper()
	var rs []providers.Ref
	for _, s := range refs {
		r, err := providers.ParseRef(s)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return p.Fetch(context.Background(), rs)
}

func TestFormats(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "s.yaml", "db:\n  password: fake-pw-1\n  port: 5432\ntoken: fake-tok\nlist: [a, b]\n")
	write(t, dir, "s.json", `{"api": {"key": "fake-key-2", "n": 1.50}, "z": true}`)
	write(t, dir, "s.env", "API_KEY=fake-key-3\n# comment\nQUOTED=\"a b\"\n")
	write(t, dir, "raw.pem", "not really a key\n")
	p, err := New(Config{Root: dir}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ ref, want string }{
		{"file://s.yaml#token", "fake-tok"},
		{"file://s.yaml#/db/password", "fake-pw-1"},
		{"file://s.yaml#/db/port", "5432"},
		{"file://s.yaml#db", `{"password":"fake-pw-1","port":5432}`},
		{"file://s.yaml#/list/1", "b"},
		{"file://s.json#/api/key", "fake-key-2"},
		{"file://s.json#/api/n", "1.50"},
		{"file://s.json#z", "true"},
		{"file://s.json", `{"api":{"key":"fake-key-2","n":1.50},"z":true}`},
		{"file://s.env#API_KEY", "fake-key-3"},
		{"file://s.env#QUOTED", "a b"},
		{"file://raw.pem", "not really a key\n"},
		{"file://" + filepath.Join(dir, "s.yaml") + "#token", "fake-tok"},
	}
	for _, tt := range tests {
		res := fetch(t, p, tt.ref)[0]
		if res.Err != nil {
			t.Errorf("%s: %v", tt.ref, res.Err)
			continue
		}
		if got := string(res.Secret.Value.Reveal()); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.ref, got, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "s.yaml", "alpha: fake-value-a\nbeta: fake-value-b\n")
	write(t, dir, "bad.json", `{"k": "fake-value-c"`)
	write(t, dir, "raw.txt", "x")
	os.Mkdir(filepath.Join(dir, "d.yaml"), 0o700)
	p, _ := New(Config{Root: dir}, nil, "")
	tests := []struct {
		ref  string
		kind providers.Kind
		want string
	}{
		{"file://missing.yaml#k", providers.KindNotFound, "no such file"},
		{"file://s.yaml#gamma", providers.KindNotFound, `keys there: "alpha", "beta"`},
		{"file://s.yaml#/alpha/x", providers.KindInvalid, "not an object"},
		{"file://bad.json#k", providers.KindInvalid, "not valid json"},
		{"file://raw.txt#k", providers.KindInvalid, "has no keys"},
		{"file://d.yaml#k", providers.KindInvalid, "not a regular file"},
	}
	for _, tt := range tests {
		err := fetch(t, p, tt.ref)[0].Err
		if err == nil {
			t.Errorf("%s: no error", tt.ref)
			continue
		}
		if providers.KindOf(err) != tt.kind || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.ref) {
			t.Errorf("%s: got %v (kind %v), want kind %v containing %q", tt.ref, err, providers.KindOf(err), tt.kind, tt.want)
		}
		if strings.Contains(err.Error(), "fake-value") {
			t.Errorf("%s: error leaks a value: %v", tt.ref, err)
		}
	}
}

func TestUserMayNotRead(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to make a file another user cannot read")
	}
	dir, _ := os.MkdirTemp("", "filep")
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	write(t, dir, "s.yaml", "k: fake-value\n") // root-owned, 0600
	p, _ := New(Config{Root: dir}, &identity.Identity{UID: 1000, GID: 1000}, "")
	err := fetch(t, p, "file://s.yaml#k")[0].Err
	if providers.KindOf(err) != providers.KindDenied || !strings.Contains(err.Error(), "may not read") {
		t.Fatalf("got %v, want a denial naming the user", err)
	}
	os.Chown(filepath.Join(dir, "s.yaml"), 1000, 1000)
	if err := fetch(t, p, "file://s.yaml#k")[0].Err; err != nil {
		t.Fatalf("after chown: %v", err)
	}
}

// BenchmarkResolve measures Resolve over the file provider with 1, 20 and
// 200 secrets, each in its own file (the worst case: no shared reads).
func BenchmarkResolve(b *testing.B) {
	for _, n := range []int{1, 20, 200} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			var refs []providers.Ref
			for i := 0; i < n; i++ {
				name := fmt.Sprintf("s%d.yaml", i)
				os.WriteFile(filepath.Join(dir, name), []byte("db:\n  password: fake-value\n"), 0o600)
				r, _ := providers.ParseRef("file://" + name + "#/db/password")
				refs = append(refs, r)
			}
			p, _ := New(Config{Root: dir}, nil, "")
			open := func(context.Context, string) (providers.Provider, error) { return p, nil }
			b.ReportAllocs()
			for b.Loop() {
				res := providers.Resolve(context.Background(), refs, open, providers.Options{Timeout: time.Second})
				if len(res.Errors) > 0 {
					b.Fatal(res.Errors)
				}
			}
		})
	}
}
