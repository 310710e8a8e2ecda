package provenance

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The module tree hash is the go.sum h1: hash: checked against a module of
// this machine's Go module cache (skipped when there is none).
func TestModuleHashMatchesGoCache(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skip("no go env")
	}
	cache := strings.TrimSpace(string(out))
	zhs, _ := filepath.Glob(filepath.Join(cache, "cache/download/golang.org/x/*/@v/*.ziphash"))
	for _, zh := range zhs {
		rel := strings.TrimPrefix(filepath.ToSlash(zh), "/")
		dir := "/" + strings.TrimSuffix(strings.Replace(strings.Replace(rel, "cache/download/", "", 1), "/@v/", "@", 1), ".ziphash")
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		x := New()
		data, _ := os.ReadFile(zh)
		x.AddManifest(rel, data)
		var one string
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				b, _ := os.ReadFile(p)
				x.AddModuleFile(strings.TrimPrefix(p, "/"), sha256.Sum256(b))
				one = strings.TrimPrefix(p, "/")
			}
			return nil
		})
		b, _ := os.ReadFile("/" + one)
		if o := x.Owner(one, Digest{SHA256: sha256.Sum256(b)}); !strings.HasPrefix(o, "Go module golang.org/x/") {
			t.Fatalf("%s: owner %q, want the module", dir, o)
		}
		return
	}
	t.Skip("no golang.org/x module with its .ziphash in the module cache")
}
