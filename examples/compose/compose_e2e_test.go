package compose_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/internal/dockertest"
)

// TestComposeEndToEnd runs compose.yaml for real with docker-compose on the
// machine's Docker Engine: images FROM scratch built from binaries compiled
// here (no registry), the file provider standing in for Vault through an
// override. It proves the app starts only after the first delivery, sees a
// rotated value without a restart (the relay), and nothing is left after
// `down -v`. docker-compose 1.29 breaks when it recreates containers on a
// newer Engine, so the project is fresh, brought up once and taken down.
func TestComposeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the docker-compose run")
	}
	needDocker(t)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	suffix := randHex(t, 4)
	project := "sbe2e" + suffix
	brokerImage := "secretbroker-e2e:" + suffix
	appImage := "secretbroker-e2e-app:" + suffix

	start := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }
	// Static binaries and scratch images.
	build := t.TempDir()
	for pkg, out := range map[string]string{"./cmd/inject": "inject", "./cmd/broker": "broker", "./examples/compose/demoapp": "demoapp"} {
		dockertest.BuildStatic(t, pkg, filepath.Join(build, "bin"), out)
	}
	step("binaries built")
	run(t, exec.CommandContext(ctx, "docker", "build", "-q", "-f", filepath.Join(repo, "Dockerfile.prebuilt"), "-t", brokerImage, build))
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", brokerImage).Run() })
	run(t, exec.CommandContext(ctx, "docker", "build", "-q", "-f", filepath.Join(repo, "examples/compose/demoapp/Dockerfile.prebuilt"), "-t", appImage, build))
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", appImage).Run() })

	// The upstream: a file the broker reads through a bind mount.
	up := t.TempDir()
	os.Chmod(up, 0o755)
	v1 := "db-" + randHex(t, 12)
	v2 := "db-" + randHex(t, 12)
	writeAtomic(t, filepath.Join(up, "secrets.yaml"), "db_password: "+v1+"\n")
	writeAtomic(t, filepath.Join(up, "broker.yaml"), "secrets:\n  - name: db_password\n    ref: file:///upstream/secrets.yaml#db_password\n")
	override := filepath.Join(t.TempDir(), "override.yaml")
	writeAtomic(t, override, fmt.Sprintf(`services:
  broker:
    environment:
      INJECT_CONFIG: /upstream/broker.yaml
      INJECT_REFRESH: 1s
    volumes:
      - %s:/upstream:ro
`, up))

	compose := func(args ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", project, "-f", "compose.yaml", "-f", override}, args...)...)
		c.Env = append(os.Environ(), "SECRETBROKER_IMAGE="+brokerImage, "DEMO_APP_IMAGE="+appImage)
		return c
	}
	downed := false
	t.Cleanup(func() {
		if !downed {
			c := compose("down", "-v", "--remove-orphans", "-t", "5")
			c.Run()
		}
	})
	step("images built")
	run(t, compose("up", "-d", "--no-build", "broker", "app"))
	step("up")

	logs := func() string {
		out, _ := compose("logs", "--no-color", "app").CombinedOutput()
		return string(out)
	}
	waitLog := func(what string, re *regexp.Regexp) string {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			if m := re.FindString(logs()); m != "" {
				return m
			}
		}
		b, _ := compose("logs", "--no-color").CombinedOutput()
		t.Fatalf("%s: not seen in 60s; logs:\n%s", what, b)
		return ""
	}
	d1, d2 := digest(v1), digest(v2)
	waitLog("app start with the delivered secret", regexp.MustCompile(`started: secret sha256=`+d1+` ready_marker=true pid=\d+`))

	step("app started with the first delivery")
	// Rotate upstream: the broker replaces the file, the relay sends SIGHUP.
	writeAtomic(t, filepath.Join(up, "secrets.yaml"), "db_password: "+v2+"\n")
	waitLog("app reload with the rotated secret", regexp.MustCompile(`reloaded: secret sha256=`+d2))
	step("app reloaded the rotated secret")
	l := logs()
	if n := strings.Count(l, "started: "); n != 1 {
		t.Fatalf("the app started %d times, want once (no restart):\n%s", n, l)
	}
	if strings.Contains(l, v1) || strings.Contains(l, v2) {
		t.Fatal("a secret value reached the logs")
	}
	appID := strings.TrimSpace(output(t, compose("ps", "-q", "app")))
	if rc := strings.TrimSpace(output(t, exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.RestartCount}} {{.State.Running}}", appID))); rc != "0 true" {
		t.Fatalf("app restart count / running = %q", rc)
	}
	bl, _ := compose("logs", "--no-color", "broker").CombinedOutput()
	if bytes.Contains(bl, []byte(v1)) || bytes.Contains(bl, []byte(v2)) {
		t.Fatal("a secret value reached the broker's logs")
	}
	if !bytes.Contains(bl, []byte("secret files replaced")) {
		t.Fatalf("broker did not log the replacement:\n%s", bl)
	}

	run(t, compose("down", "-v", "--remove-orphans", "-t", "5"))
	downed = true
	step("down")
	label := "label=com.docker.compose.project=" + project
	for _, what := range [][]string{{"ps", "-aq", "--filter", label}, {"volume", "ls", "-q", "--filter", label}, {"network", "ls", "-q", "--filter", label}} {
		if out := strings.TrimSpace(output(t, exec.CommandContext(ctx, "docker", what...))); out != "" {
			t.Errorf("docker %s: left behind after down: %s", strings.Join(what[:2], " "), out)
		}
	}
}

// needDocker skips (or, under CI=true, fails) when no Docker Engine or no
// docker-compose is there.
func needDocker(t *testing.T) {
	t.Helper()
	dockertest.Require(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		msg := "docker-compose is not installed (Debian: apt-get install docker-compose), so the compose end-to-end test cannot run"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

func run(t *testing.T, c *exec.Cmd) {
	t.Helper()
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(c.Args, " "), err, out)
	}
}

func output(t *testing.T, c *exec.Cmd) string {
	t.Helper()
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(c.Args, " "), err)
	}
	return string(out)
}

func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func digest(v string) string {
	s := sha256.Sum256([]byte(v))
	return hex.EncodeToString(s[:8])
}
