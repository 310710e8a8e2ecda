package readmetest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/internal/dockertest"
	"github.com/secretbroker/secretbroker/internal/readmetest"
)

// noValue fails when the quickstart's secret values ("dev-only-…") or the
// build's output show in a command's output.
func noValue(t testing.TB, s readmetest.Step, out string) {
	t.Helper()
	if strings.Contains(out, "dev-only-") {
		t.Fatalf("line %d: %s: a quickstart secret value was printed:\n%s", s.Line, s.Cmd, out)
	}
}

// TestReadmeTryIt follows README.md's "Try it" literally, starting in a
// subdirectory of the checkout as a reader may.
func TestReadmeTryIt(t *testing.T) {
	root := dockertest.ModuleRoot(t)
	t.Cleanup(func() { os.RemoveAll("/dev/shm/secretbroker-quickstart") })
	r := &readmetest.Runner{Dir: filepath.Join(root, "examples", "quickstart"), Check: noValue, Wait: 1}
	r.Run(t, readmetest.Block(t, filepath.Join(root, "README.md"), "Try it"))
}

// TestReadmeInAContainer follows "In a container": the build command gives
// bin/inject and bin/broker, which Dockerfile.prebuilt packs, and the image
// runs. In a copy of the repository, since it writes bin/.
func TestReadmeInAContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the image build")
	}
	dockertest.Require(t)
	root := dockertest.ModuleRoot(t)
	tree := readmetest.CopyTree(t, root)
	r := &readmetest.Runner{Dir: filepath.Join(tree, "cmd"), Check: noValue, Wait: 1}
	r.Run(t, readmetest.Block(t, filepath.Join(root, "README.md"), "In a container"))
	for _, bin := range []string{"inject", "broker"} {
		if fi, err := os.Stat(filepath.Join(tree, "bin", bin)); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("bin/%s was not built: %v", bin, err)
		}
	}
}
