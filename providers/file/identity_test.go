package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/secretbroker/secretbroker/providers"
)

// FuzzFileIdentity: for any file:// reference the parser accepts, the
// identity the plan is checked on (Identity, under the config directory as
// root) is what the gate is asked just before the file is opened, and the
// file opened is that real path.
func FuzzFileIdentity(f *testing.F) {
	dir := f.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("k: v\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "b.env"), []byte("K=v\n"), 0o644)
	os.Symlink(filepath.Join(dir, "a.yaml"), filepath.Join(dir, "link.yaml"))
	os.Symlink("sub", filepath.Join(dir, "dirlink"))
	for _, s := range []string{"a.yaml", "link.yaml", "dirlink/b.env", "sub/b.env#K", "%61.yaml", "sub%2Fb.env", dir + "/a.yaml", "/" + dir + "/link.yaml", "a.yaml/"} {
		f.Add(s)
	}
	env := providers.Env{ConfigDir: dir}
	p, err := New(Config{}, nil, dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r, err := providers.ParseRef("file://" + path)
		if err != nil {
			return
		}
		want, err := Identity(r, env)
		if err != nil {
			return
		}
		var asked []string
		gate := func(id string) error { asked = append(asked, id); return nil }
		res := p.Fetch(providers.WithGate(context.Background(), gate), []providers.Ref{r})
		if len(asked) == 0 {
			if res[0].Err == nil {
				t.Fatalf("%q: read without asking the gate", r.Raw)
			}
			return
		}
		if asked[0] != want {
			t.Fatalf("%q: plan checked %q, request-time gate asked %q", r.Raw, want, asked[0])
		}
	})
}
