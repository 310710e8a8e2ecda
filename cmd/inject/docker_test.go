package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/internal/dockertest"
)

// TestContainer is the real thing: an image FROM scratch with inject as
// ENTRYPOINT and a tiny static app, run with a tmpfs and --user 1000:1000.
func TestContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("container test skipped in -short mode")
	}
	dockertest.Require(t)
	ctx := t.TempDir()
	dockertest.BuildStatic(t, "./cmd/inject", ctx, "inject")
	dockertest.BuildStatic(t, "./internal/testapp", ctx, "app")

	// A secret generated now, so no value is committed; its hash is what the
	// app reports, so the value never appears in test output.
	raw := make([]byte, 16)
	rand.Read(raw)
	value := "ctr-" + hex.EncodeToString(raw)
	want := fmt.Sprintf("sha256=%x", sha256.Sum256([]byte(value)))
	os.WriteFile(filepath.Join(ctx, "secrets.yaml"), []byte("db:\n  password: "+value+"\n"), 0o644)
	os.WriteFile(filepath.Join(ctx, "inject.yaml"), []byte(`secrets:
  - name: db_password
    ref: file:///etc/app/secrets.yaml#/db/password
`), 0o644)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM scratch
COPY inject app /bin/
COPY inject.yaml secrets.yaml /etc/app/
ENV INJECT_CONFIG=/etc/app/inject.yaml
ENTRYPOINT ["/bin/inject", "--"]
`), 0o644)
	tag := fmt.Sprintf("secretbroker-test-inject:%d", time.Now().UnixNano())
	dockertest.Build(t, ctx, tag)

	t.Run("exec", func(t *testing.T) {
		out := dockertest.MustDocker(t, "run", "--rm", "--tmpfs", "/run/secretbroker:mode=0700,uid=1000,gid=1000", "--user", "0:0",
			"--entrypoint", "/bin/inject", tag, "--user", "1000:1000", "--", "/bin/app", "read", "DB_PASSWORD_FILE")
		if strings.Contains(out, value) {
			t.Fatal("the secret value appeared in the container's output")
		}
		for _, w := range []string{want, "env-clean", "uid=1000 gid=1000"} {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	})

	t.Run("non-root container", func(t *testing.T) {
		out := dockertest.MustDocker(t, "run", "--rm", "--tmpfs", "/run/secretbroker:mode=0700,uid=1000,gid=1000", "--user", "1000:1000", tag, "/bin/app", "read", "DB_PASSWORD_FILE")
		if strings.Contains(out, value) || !strings.Contains(out, want) || !strings.Contains(out, "env-clean") {
			t.Fatalf("unexpected output:\n%s", strings.ReplaceAll(out, value, "[value]"))
		}
	})

	t.Run("disk refused", func(t *testing.T) {
		out, err := dockertest.Docker(t, "run", "--rm", "-e", "INJECT_DIR=/etc/app", tag, "/bin/app", "id")
		if err == nil || !strings.Contains(out, "disk-backed") || err.Error() != "exit status 73" {
			t.Fatalf("a disk-backed dir in the image was accepted: %v\n%s", err, out)
		}
	})

	t.Run("supervise stop", func(t *testing.T) {
		// A tmpfs volume outlives the container, so we can look after stop.
		vol := fmt.Sprintf("secretbroker-test-%d", time.Now().UnixNano())
		dockertest.MustDocker(t, "volume", "create", "--driver", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=1m,mode=0700,uid=1000,gid=1000", vol)
		t.Cleanup(func() { dockertest.Docker(t, "volume", "rm", "-f", vol) })
		name := vol + "-app"
		dockertest.MustDocker(t, "run", "-d", "--name", name, "-v", vol+":/run/secretbroker",
			"--entrypoint", "/bin/inject", tag, "--supervise", "--user", "1000:1000", "--", "/bin/app", "wait", "42")
		t.Cleanup(func() { dockertest.Docker(t, "rm", "-f", name) })
		waitFor(t, func() bool { out, _ := dockertest.Docker(t, "logs", name); return strings.Contains(out, "ready") })
		ls := dockertest.MustDocker(t, "run", "--rm", "-v", vol+":/run/secretbroker", "--entrypoint", "/bin/app", tag, "ls", "/run/secretbroker")
		if !strings.Contains(ls, "db_password") {
			t.Fatalf("secret not delivered before stop:\n%s", ls)
		}
		dockertest.MustDocker(t, "stop", "-t", "10", name)
		code := strings.TrimSpace(dockertest.MustDocker(t, "inspect", "-f", "{{.State.ExitCode}}", name))
		if code != "42" {
			logs, _ := dockertest.Docker(t, "logs", name)
			t.Fatalf("exit code %s, want the app's 42\n%s", code, logs)
		}
		ls = dockertest.MustDocker(t, "run", "--rm", "-v", vol+":/run/secretbroker", "--entrypoint", "/bin/app", tag, "ls", "/run/secretbroker")
		if strings.Contains(ls, "db_password") {
			t.Fatalf("secret file left behind after docker stop:\n%s", ls)
		}
	})
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if ok() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("timed out waiting")
}
