package process

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// waitFile waits for path to exist (an app's "I am running" mark).
func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s never appeared", path)
}

type result struct {
	code int
	err  error
}

// exits waits for the supervised app's result and wants code. When
// change is set it is called now and every 200ms until then: the relay
// learns the app's pid from Started, which runs in its own goroutine, so
// a change made as the app starts may come before it and go unrelayed.
func exits(t *testing.T, done <-chan result, code int, what string, change func()) {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(20 * time.Second)
	for {
		if change != nil {
			change()
		}
		select {
		case r := <-done:
			if r.err != nil || r.code != code {
				t.Fatalf("code %d, %v; want %d (%s)", r.code, r.err, code, what)
			}
			return
		case <-timeout:
			t.Fatalf("the app did not exit: %s", what)
		case <-tick.C:
		}
	}
}

// app is a shell app that marks itself running in ready (after setting its
// traps) and then waits; the script before the loop says what it does on
// which signal.
func app(traps, ready string) []string {
	return []string{"sh", "-c", traps + `; : > "$0"; while :; do sleep 0.02; done`, ready, filepath.Join(filepath.Dir(ready), "got")}
}

// TestSuperviseForwardsSignalsToTheApp: a signal inject gets reaches the
// app, whose exit code comes back; Started runs with the app's pid.
func TestSuperviseForwardsSignalsToTheApp(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	started := make(chan int, 1)
	done := make(chan result, 1)
	go func() {
		code, err := Supervise("/bin/sh", app("trap 'exit 6' USR1", ready), os.Environ(), SuperviseOptions{
			Logger:  quiet(),
			Started: func(_ context.Context, pid int) { started <- pid },
		})
		done <- result{code, err}
	}()
	waitFile(t, ready)
	if pid := <-started; pid <= 0 {
		t.Fatalf("Started with pid %d", pid)
	}
	unix.Kill(os.Getpid(), syscall.SIGUSR1)
	exits(t, done, 6, "the app's SIGUSR1 trap", nil)
}

func TestSuperviseCannotStart(t *testing.T) {
	_, err := Supervise("/nonexistent/app", []string{"app"}, nil, SuperviseOptions{Logger: quiet()})
	var se *StartError
	if !errors.As(err, &se) || se.Code != 126 {
		t.Fatalf("err %v, want a StartError with 126", err)
	}
}

// TestSuperviseWatchSignalsOnAVisibleChange is the relay: a hidden file
// (the broker's temporaries, .ready) changes nothing; a secret file that is
// replaced makes one signal to the app.
func TestSuperviseWatchSignalsOnAVisibleChange(t *testing.T) {
	dir, marks := t.TempDir(), t.TempDir()
	ready := filepath.Join(marks, "ready")
	done := make(chan result, 1)
	go func() {
		code, err := SuperviseWatch("/bin/sh", app(`trap 'echo hup >> "$1"; exit 5' HUP`, ready), os.Environ(),
			SuperviseOptions{Logger: quiet()}, WatchOptions{Dir: dir, Debounce: 20 * time.Millisecond})
		done <- result{code, err}
	}()
	waitFile(t, ready)
	os.WriteFile(filepath.Join(dir, ".tmp-db"), []byte("x"), 0o600)
	select {
	case r := <-done:
		t.Fatalf("a hidden file signalled the app (%d, %v)", r.code, r.err)
	case <-time.After(200 * time.Millisecond):
	}
	exits(t, done, 5, "the app's SIGHUP trap", func() { os.WriteFile(filepath.Join(dir, "db"), []byte("x"), 0o600) })
}

// TestSuperviseWatchRestartsTheApp: with Restart, a change stops the app
// (SIGTERM) and starts it again; the second run's exit code is returned.
func TestSuperviseWatchRestartsTheApp(t *testing.T) {
	dir, marks := t.TempDir(), t.TempDir()
	runs := filepath.Join(marks, "runs")
	script := `echo run >> "$0"; if [ "$(wc -l < "$0")" -ge 2 ]; then exit 4; fi; while :; do sleep 0.02; done`
	done := make(chan result, 1)
	go func() {
		code, err := SuperviseWatch("/bin/sh", []string{"sh", "-c", script, runs}, os.Environ(),
			SuperviseOptions{Logger: quiet()}, WatchOptions{Dir: dir, Restart: true, Debounce: 20 * time.Millisecond, StopTimeout: time.Second})
		done <- result{code, err}
	}()
	waitFile(t, runs)
	exits(t, done, 4, "the restarted app's own exit", func() { os.WriteFile(filepath.Join(dir, "db"), []byte("x"), 0o600) })
	if b, _ := os.ReadFile(runs); strings.Count(string(b), "run") < 2 {
		t.Errorf("runs: %q, want 2 or more", b)
	}
}

func TestSuperviseWatchNeedsADirectory(t *testing.T) {
	_, err := SuperviseWatch("/bin/true", []string{"true"}, nil, SuperviseOptions{Logger: quiet()}, WatchOptions{Dir: filepath.Join(t.TempDir(), "missing")})
	var we *WatchError
	if !errors.As(err, &we) || !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "cannot watch it (--watch)") {
		t.Fatalf("err %v, want a WatchError", err)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"HUP": syscall.SIGHUP, "sigusr1": syscall.SIGUSR1, "SIGTERM": syscall.SIGTERM, "10": syscall.Signal(10)} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"NOPE", "0", "99", ""} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestExecFailures: Exec returns only when it cannot replace inject, with
// 127 for a missing program and 126 for one that cannot be executed.
func TestExecFailures(t *testing.T) {
	noexec := filepath.Join(t.TempDir(), "noexec")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	for path, code := range map[string]int{"/nonexistent/app": 127, noexec: 126} {
		var se *StartError
		if err := Exec(path, []string{path}, nil); !errors.As(err, &se) || se.Code != code {
			t.Errorf("%s: %v, want code %d", path, err, code)
		}
	}
}

func TestDropAndCheckDropWithoutAUser(t *testing.T) {
	if err := CheckDrop(nil); err != nil {
		t.Error(err)
	}
	if err := DropPrivileges(nil); err != nil {
		t.Error(err)
	}
	if err := CheckNotSetuid(); err != nil {
		t.Error(err)
	}
}
