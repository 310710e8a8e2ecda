package identity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in       string
		uid, gid int
	}{
		{"1000", 1000, 1000},
		{"1000:2000", 1000, 2000},
		{"0", 0, 0},
		{"root", 0, 0},
	}
	for _, tt := range tests {
		id, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if id.UID != tt.uid || id.GID != tt.gid {
			t.Errorf("Parse(%q) = %d:%d, want %d:%d", tt.in, id.UID, id.GID, tt.uid, tt.gid)
		}
	}
	for _, bad := range []string{"", "no-such-user-xyz", "1000:no-such-group-xyz", "-1"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

// TestParseExact: a uid or gid is read exactly as written; nothing outside
// uid_t/gid_t, nor (uid_t)-1, is accepted, and nothing wraps to 0 (root).
func TestParseExact(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" when refused
	}{
		{"4294967294", "4294967294:4294967294"},
		{"4294967294:0", "4294967294:0"},
		{"4294967295", ""}, // (uid_t)-1
		{"4294967296", ""}, // wrapped to 0 (root) before
		{"18446744073709551616", ""},
		{"1000:4294967295", ""},
		{"1000:4294967296", ""},
		{"-1", ""},
		{"1000:-1", ""},
		{"+1000", ""},
		{"010", ""},
		{"1000:010", ""},
		{"00", ""},
		{"1e3", ""},
		{"0x3e8", ""},
		{"0o10", ""},
		{"1_000", ""},
		{" 1000", ""},
		{"1000 ", ""},
		{"0", "0:0"},
		{"1000:0", "1000:0"},
	}
	for _, tt := range tests {
		id, err := Parse(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("Parse(%q) = %s, want an error", tt.in, id)
		case tt.want != "" && err != nil:
			t.Errorf("Parse(%q): %v", tt.in, err)
		case tt.want != "" && id.String() != tt.want:
			t.Errorf("Parse(%q) = %s, want %s", tt.in, id, tt.want)
		}
	}
}

func TestCheckReadable(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown test files")
	}
	dir, err := os.MkdirTemp("", "identity")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	f := filepath.Join(dir, "s.yaml")
	os.WriteFile(f, []byte("a: b\n"), 0o600)
	app := &Identity{UID: 1000, GID: 1000}
	if err := app.CheckReadable(f); err == nil || !strings.Contains(err.Error(), "may not read") {
		t.Fatalf("root-owned 0600 file: err = %v, want refusal", err)
	}
	os.Chown(f, 1000, 1000)
	if err := app.CheckReadable(f); err != nil {
		t.Fatalf("owned file: %v", err)
	}
	os.Chmod(dir, 0o700)
	if err := app.CheckReadable(f); err == nil || !strings.Contains(err.Error(), "may not enter") {
		t.Fatalf("closed directory: err = %v, want refusal", err)
	}
	os.Chmod(dir, 0o755)
	os.Chown(f, 0, 1000)
	os.Chmod(f, 0o640)
	if err := app.CheckReadable(f); err != nil {
		t.Fatalf("group-readable file: %v", err)
	}
}
