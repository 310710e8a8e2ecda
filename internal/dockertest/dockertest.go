// Package dockertest builds FROM scratch images of the project's own static
// binaries and runs them on the local Docker Engine. No registry is needed.
// When `docker info` fails the tests skip with a message, except under CI
// (CI=true), where they fail.
package dockertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Require skips or fails t when no Docker Engine answers.
func Require(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("docker info failed, so the container tests cannot run: %v\n%s", err, lastLines(out, 5))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ModuleRoot finds the main module's directory from the test's directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/secretbroker/secretbroker\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("main module root not found")
		}
		dir = parent
	}
}

// BuildStatic compiles a package of the main module as a static binary
// (CGO_ENABLED=0) into dir/name.
func BuildStatic(t testing.TB, pkg, dir, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = ModuleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// Docker runs docker with args and returns its combined output.
func Docker(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// MustDocker is Docker that fails the test on error.
func MustDocker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := Docker(t, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Build builds an image tagged tag from the context dir (which holds a
// Dockerfile) and removes it when the test ends.
func Build(t testing.TB, dir, tag string) {
	t.Helper()
	MustDocker(t, "build", "-q", "-t", tag, dir)
	t.Cleanup(func() { Docker(t, "rmi", "-f", tag) })
}
