package compose_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/internal/dockertest"
	"github.com/secretbroker/secretbroker/internal/readmetest"
)

// TestReadme follows README.md literally with every Compose CLI installed:
// the "Without a registry" block always, the Vault walkthrough when its
// images are already on the machine (no registry here). Each run is in a
// copy of the repository (the block builds into bin/ and writes upstream/)
// under a fresh project name. Before the block's final `down -v` it checks
// what the README promises but cannot show: one start (the reload kept the
// process), no secret value in any log, the broker replacing the file; after
// it, that nothing of the project is left.
func TestReadme(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the compose runs")
	}
	dockertest.Require(t)
	clis := composeCLIs()
	if len(clis) == 0 {
		msg := "neither `docker compose` nor `docker-compose` is installed (Debian: apt-get install docker-compose), so the README cannot be followed"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root := dockertest.ModuleRoot(t)
	for _, cli := range clis {
		t.Run(strings.ReplaceAll(cli, " ", "_"), func(t *testing.T) {
			t.Run("without_a_registry", func(t *testing.T) {
				followReadme(t, root, cli, "Without a registry")
			})
			t.Run("with_vault", func(t *testing.T) {
				for _, img := range []string{"hashicorp/vault:1.18", "golang:1.26"} {
					if _, err := dockertest.Docker(t, "image", "inspect", img); err != nil {
						t.Skipf("%s is not on this machine and no registry is reachable: the Vault walkthrough cannot run", img)
					}
				}
				followReadme(t, root, cli, "Walkthrough (with Vault)")
			})
		})
	}
}

// composeCLIs lists the Compose CLIs that answer, v2 first.
func composeCLIs() []string {
	var clis []string
	if exec.Command("docker", "compose", "version").Run() == nil {
		clis = append(clis, "docker compose")
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		clis = append(clis, "docker-compose")
	}
	return clis
}

func followReadme(t *testing.T, root, cli, heading string) {
	steps := readmetest.Block(t, "README.md", heading)
	last := steps[len(steps)-1]
	if last.Cmd != "docker compose down -v" {
		t.Fatalf("README %q ends with %q, want `docker compose down -v`", heading, last.Cmd)
	}
	tree := readmetest.CopyTree(t, root)
	project := "sbreadme" + randHex(t, 4)
	env := []string{"COMPOSE_PROJECT_NAME=" + project}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "COMPOSE_") {
			env = append(env, kv)
		}
	}
	r := &readmetest.Runner{
		Dir: filepath.Join(tree, "examples"), // anywhere in the clone
		Env: env,
		Rewrite: func(cmd string) string {
			return strings.ReplaceAll(cmd, "docker compose ", cli+" ")
		},
		Check: func(t testing.TB, s readmetest.Step, out string) {
			if strings.Contains(out, "-demo-value") {
				t.Fatalf("line %d: %s: a secret value reached the output", s.Line, s.Cmd)
			}
		},
	}
	compose := func(args ...string) *exec.Cmd {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		t.Cleanup(cancel)
		argv := append(strings.Fields(cli), args...)
		c := exec.CommandContext(ctx, argv[0], argv[1:]...)
		c.Dir, c.Env = filepath.Join(tree, "examples/compose"), r.Env
		return c
	}
	done := false
	t.Cleanup(func() {
		if !done {
			compose("down", "-v", "--remove-orphans", "-t", "5").Run()
		}
	})

	r.Run(t, steps[:len(steps)-1])

	appLogs, _ := compose("logs", "--no-color", "app").CombinedOutput()
	for _, want := range []string{"started: secret sha256=" + digest("first-demo-value"), "reloaded: secret sha256=" + digest("second-demo-value")} {
		if !strings.Contains(string(appLogs), want) {
			t.Errorf("the app's logs lack %q:\n%s", want, appLogs)
		}
	}
	if n := strings.Count(string(appLogs), "started: "); n != 1 {
		t.Errorf("the app started %d times, want once (a reload, not a restart):\n%s", n, appLogs)
	}
	brokerLogs, _ := compose("logs", "--no-color", "broker").CombinedOutput()
	if !strings.Contains(string(brokerLogs), "secret files replaced") {
		t.Errorf("the broker did not log the replacement:\n%s", brokerLogs)
	}
	for _, l := range [][]byte{appLogs, brokerLogs} {
		if strings.Contains(string(l), "-demo-value") {
			t.Fatal("a secret value reached the logs")
		}
	}

	r.Run(t, steps[len(steps)-1:])
	done = true
	label := "label=com.docker.compose.project=" + project
	for _, what := range [][]string{{"ps", "-aq", "--filter", label}, {"volume", "ls", "-q", "--filter", label}, {"network", "ls", "-q", "--filter", label}} {
		if out, err := dockertest.Docker(t, what...); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("docker %s: left behind after down -v: %s %v", strings.Join(what[:2], " "), out, err)
		}
	}
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// digest is the short SHA-256 the demo app prints instead of its secret.
func digest(v string) string {
	s := sha256.Sum256([]byte(v))
	return hex.EncodeToString(s[:8])
}
