package broker

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secretbroker/secretbroker/spec"
)

// TestNotifyCommandGetsTheAppsStrippedEnvironment: the notify command
// sees neither the provider credentials, nor strip_env, nor INJECT_*, nor
// the variables that held references; it gets NAME_FILE like the app.
func TestNotifyCommandGetsTheAppsStrippedEnvironment(t *testing.T) {
	f := newFixture(t, "a: alpha-fake\n", "a")
	f.s.Secrets[0].EnvVar = "A_FILE"
	f.s.Secrets[0].FromEnv = "A_REF"
	out := filepath.Join(t.TempDir(), "env")
	// VAULT_TOKEN is a credential of a provider this test binary has
	// (lease_test.go registers vault's descriptor), whether or not the
	// spec uses it.
	f.s.Environ = []string{"PATH=" + os.Getenv("PATH"), "VAULT_TOKEN=fake-token",
		"INJECT_DIR=/x", "STRIPPED=1", "A_REF=file://up.yaml#a", "KEEP=1"}
	f.s.StripEnv = []string{"STRIPPED"}
	f.s.Notify = spec.Notify{Command: []string{"sh", "-c", `env > "$0"`, out}}
	ctx := context.Background()
	b := f.delivered(ctx, Options{})
	f.upstream("a: alpha2-fake\n")
	f.advance(2 * time.Minute)
	if err := b.Cycle(ctx, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { b, _ := os.ReadFile(out); return len(b) > 0 })
	time.Sleep(50 * time.Millisecond) // let the shell finish writing
	data, _ := os.ReadFile(out)
	env := strings.Split(strings.TrimSpace(string(data)), "\n")
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains([]string{"VAULT_TOKEN", "INJECT_DIR", "STRIPPED", "A_REF"}, k) {
			t.Errorf("notify command saw %s", k)
		}
	}
	for _, want := range []string{"KEEP=1", "A_FILE=" + filepath.Join(f.dir, "a"), "SECRETBROKER_CHANGED=a"} {
		if !slices.Contains(env, want) {
			t.Errorf("notify command lacks %s", want)
		}
	}
}
