package process

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnvPlan(t *testing.T) {
	p := EnvPlan{
		Base:     []string{"PATH=/bin", "DB=vault://secret/db", "VAULT_TOKEN=t", "INJECT_DIR=/x", "KEEP=1", "DROP=2", "SNEAKY=op://a/b/c"},
		Remove:   map[string]bool{"DB": true, "VAULT_TOKEN": true, "DROP": true},
		Set:      map[string]string{"DB_FILE": "/run/secretbroker/db"},
		StillRef: func(v string) bool { return strings.HasPrefix(v, "op://") || strings.HasPrefix(v, "vault://") },
	}
	_, err := p.Build()
	if err == nil || !strings.Contains(err.Error(), "SNEAKY") || strings.Contains(err.Error(), "op://a/b/c") {
		t.Fatalf("a leftover reference must fail closed, naming the variable only: %v", err)
	}
	p.Remove["SNEAKY"] = true
	env, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(env, " ")
	if got != "PATH=/bin KEEP=1 DB_FILE=/run/secretbroker/db" {
		t.Fatalf("env = %q", got)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\n"), 0o644)
	env := []string{"PATH=" + dir}
	if p, err := LookPath("app", env); err != nil || p != filepath.Join(dir, "app") {
		t.Fatalf("app: %q %v", p, err)
	}
	for name, code := range map[string]int{"noexec": 126, "missing": 127, dir: 126, "/nonexistent/x": 127} {
		_, err := LookPath(name, env)
		se, ok := err.(*StartError)
		if !ok || se.Code != code {
			t.Errorf("%s: %v, want code %d", name, err, code)
		}
	}
}

func TestSuperviseMirrorsExitAndSignal(t *testing.T) {
	code, err := Supervise("/bin/sh", []string{"sh", "-c", "exit 7"}, os.Environ(), SuperviseOptions{})
	if err != nil || code != 7 {
		t.Fatalf("exit 7: %d %v", code, err)
	}
	code, err = Supervise("/bin/sh", []string{"sh", "-c", "kill -KILL $$"}, os.Environ(), SuperviseOptions{})
	if err != nil || code != 128+9 {
		t.Fatalf("SIGKILL: %d %v", code, err)
	}
	// An orphaned grandchild is reaped too, and does not confuse the exit code.
	code, err = Supervise("/bin/sh", []string{"sh", "-c", "(sleep 0.1 &) ; exit 3"}, os.Environ(), SuperviseOptions{SignalGroup: true})
	if err != nil || code != 3 {
		t.Fatalf("with grandchild: %d %v", code, err)
	}
}

// A long PATH is shortened in the message, so the command name stays visible.
func TestLookPathShortensPath(t *testing.T) {
	_, err := LookPath("chek", []string{"PATH=/a:/b:/c:/d:/e:/f"})
	if err == nil || err.Error() != `command "chek" not found on PATH (/a:/b:/c and 3 more)` {
		t.Fatalf("got %v", err)
	}
	_, err = LookPath("chek", []string{"PATH=/a:/b"})
	if err == nil || err.Error() != `command "chek" not found on PATH (/a:/b)` {
		t.Fatalf("got %v", err)
	}
}
