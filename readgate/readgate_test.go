package readgate

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secretbroker/secretbroker/identity"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := write("ok.yaml", "k: v\n", 0o644)
	big := write("big.bin", strings.Repeat("x", 100), 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml")
	os.Symlink(ok, link)
	env := filepath.Join(dir, "environ")
	os.Symlink("/proc/self/environ", env)
	sys := filepath.Join(dir, "sys")
	os.Symlink("/sys/kernel", sys)
	denyAll := func(id string) error { return errors.New("guardrail denies " + id) }

	tests := []struct {
		name string
		path string
		opts Options
		want string // "" = read succeeds
		kind Kind
	}{
		{"regular file", ok, Options{}, "", 0},
		{"symlink to a regular file", link, Options{}, "", 0},
		{"missing", filepath.Join(dir, "nope"), Options{}, "no such file", KindNotFound},
		{"directory", dir, Options{}, "not a regular file (a directory)", KindInvalid},
		{"FIFO does not block", fifo, Options{}, "not a regular file (a FIFO)", KindInvalid},
		{"device", "/dev/null", Options{}, "not a regular file (a character device)", KindInvalid},
		{"over the cap", big, Options{Max: 10}, "larger than the 10-byte cap", KindInvalid},
		{"at the cap", big, Options{Max: 100}, "", 0},
		{"/proc directly", "/proc/self/environ", Options{}, "never read from /proc or /sys", KindInvalid},
		{"/proc through a symlink", env, Options{}, "never read from /proc or /sys (resolves to /proc/", KindInvalid},
		{"/proc through dot-dot", dir + "/../../../../../../../proc/self/status", Options{}, "never read from /proc or /sys", KindInvalid},
		{"/sys through a symlink", sys + "/mm/transparent_hugepage/enabled", Options{}, "never read from /proc or /sys", KindInvalid},
		{"guard refuses the real path", link, Options{Guard: denyAll}, "guardrail denies file://" + ok, KindDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var b []byte
			var err error
			go func() { b, err = ReadFile(tt.path, tt.opts); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("ReadFile blocked")
			}
			if tt.want == "" {
				if err != nil || len(b) == 0 {
					t.Fatalf("ReadFile(%s) = %d bytes, %v; want the file", tt.path, len(b), err)
				}
				return
			}
			var ge *Error
			if !errors.As(err, &ge) || !strings.Contains(err.Error(), tt.want) || ge.Kind != tt.kind {
				t.Fatalf("ReadFile(%s) = %v; want kind %d and %q", tt.path, err, tt.kind, tt.want)
			}
		})
	}
}

func TestReadFileUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown test files")
	}
	dir, err := os.MkdirTemp("", "readgate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	f := filepath.Join(dir, "s.yaml")
	os.WriteFile(f, []byte("k: v\n"), 0o600)
	app := &identity.Identity{UID: 1000, GID: 1000}
	if _, err := ReadFile(f, Options{User: app}); err == nil || !strings.Contains(err.Error(), "may not read") {
		t.Fatalf("root-only file for uid 1000: %v", err)
	}
	// A symlink the user owns does not lend the target its permissions.
	link := filepath.Join(dir, "mine")
	os.Symlink(f, link)
	os.Lchown(link, 1000, 1000)
	if _, err := ReadFile(link, Options{User: app}); err == nil || !strings.Contains(err.Error(), "may not read") {
		t.Fatalf("symlink to a root-only file for uid 1000: %v", err)
	}
	os.Chown(f, 1000, 1000)
	if _, err := ReadFile(f, Options{User: app}); err != nil {
		t.Fatalf("owned file: %v", err)
	}
}

// A procfs mounted somewhere else is refused by its filesystem magic.
func TestReadFileProcMountedElsewhere(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	errc := make(chan error, 1)
	go func() {
		// The thread gets its own mount namespace and dies with this
		// goroutine (no UnlockOSThread), so nothing else sees the mount.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- errSkip{err}
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- errSkip{err}
			return
		}
		if err := unix.Mount("proc", dir, "proc", 0, ""); err != nil {
			errc <- errSkip{err}
			return
		}
		_, err := ReadFile(filepath.Join(dir, "self", "environ"), Options{})
		errc <- err
	}()
	err := <-errc
	var skip errSkip
	if errors.As(err, &skip) {
		t.Skipf("cannot mount proc here: %v", skip.err)
	}
	if err == nil || !strings.Contains(err.Error(), "never read from procfs or sysfs") {
		t.Fatalf("environ of a proc mounted at %s: %v; want refusal", dir, err)
	}
}

type errSkip struct{ err error }

func (e errSkip) Error() string { return e.err.Error() }

func TestRealPath(t *testing.T) {
	dir := t.TempDir()
	real, _ := filepath.EvalSymlinks(dir)
	os.Mkdir(filepath.Join(dir, "a"), 0o755)
	os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "l"))
	for in, want := range map[string]string{
		filepath.Join(dir, "l", "x.yaml"):        filepath.Join(real, "a", "x.yaml"),
		filepath.Join(dir, "l", "new", "x.yaml"): filepath.Join(real, "a", "new", "x.yaml"),
		filepath.Join(dir, "a", "..", "b"):       filepath.Join(real, "b"),
	} {
		if got, err := RealPath(in); err != nil || got != want {
			t.Errorf("RealPath(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
}
