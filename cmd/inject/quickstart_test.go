package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secretbroker/secretbroker/internal/dockertest"
)

// TestQuickstart runs README's two commands from the repository root, so
// the front door stays true.
func TestQuickstart(t *testing.T) {
	root := dockertest.ModuleRoot(t)
	bin := filepath.Join(t.TempDir(), "inject")
	build := exec.Command("go", "build", "-o", bin, "./cmd/inject")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	run := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("inject %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if strings.Contains(string(out), "dev-only-") {
			t.Fatalf("a quickstart secret value was printed:\n%s", out)
		}
		return string(out)
	}
	t.Cleanup(func() { os.RemoveAll("/dev/shm/secretbroker-quickstart") })
	plan := run("--config", "examples/quickstart/inject.yaml", "--dry-run")
	for _, want := range []string{"db_password", "file://dev-secrets.yaml#/db/password", "app.conf"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	out := run("--config", "examples/quickstart/inject.yaml", "--", "examples/quickstart/app.sh")
	for _, want := range []string{"the database password is 20 bytes long", "holds no secret value: 0 matches", "1 database url rendered"} {
		if !strings.Contains(out, want) {
			t.Errorf("app output lacks %q:\n%s", want, out)
		}
	}
}
