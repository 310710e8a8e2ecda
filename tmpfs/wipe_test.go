package tmpfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWipeHostile (issue 10 item 7b): what the app put at a secret's name
// is never followed, never blocks the wipe, and is never overwritten
// unless it is the very file Write made.
func TestWipeHostile(t *testing.T) {
	tests := []struct {
		name    string
		plant   func(t *testing.T, dir, path, outside string)
		wantErr string
		gone    bool // the name is removed
	}{
		{"fifo", func(t *testing.T, dir, path, outside string) { unix.Mkfifo(path, 0o666) }, "", true},
		{"symlink to a file outside", func(t *testing.T, dir, path, outside string) { os.Symlink(outside, path) }, "", true},
		{"symlink to a fifo", func(t *testing.T, dir, path, outside string) {
			unix.Mkfifo(path+"-fifo", 0o666)
			os.Symlink(path+"-fifo", path)
		}, "", true},
		{"directory", func(t *testing.T, dir, path, outside string) { os.Mkdir(path, 0o755) }, "is now a directory", false},
		{"hard link to a file outside", func(t *testing.T, dir, path, outside string) {
			if err := os.Link(outside, path); err != nil {
				t.Skip(err)
			}
		}, "", true},
		{"another regular file", func(t *testing.T, dir, path, outside string) { os.WriteFile(path, []byte("the app's own"), 0o600) }, "", true},
		{"char device", func(t *testing.T, dir, path, outside string) {
			if err := unix.Mknod(path, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
				t.Skip("mknod:", err)
			}
		}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := shmDir(t)
			outside := filepath.Join(base, "outside")
			os.WriteFile(outside, []byte("keep-me"), 0o644)
			dir := filepath.Join(base, "s")
			d, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.Write("k", []byte("fake-secret"), 0o400); err != nil {
				t.Fatal(err)
			}
			path := d.File("k")
			os.Remove(path)
			tt.plant(t, dir, path, outside)
			done := make(chan error, 1)
			go func() { done <- d.Wipe() }()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Wipe blocked")
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Wipe = %v, want %q", err, tt.wantErr)
			}
			if _, err := os.Lstat(path); tt.gone != os.IsNotExist(err) {
				t.Errorf("name gone = %v, want %v", os.IsNotExist(err), tt.gone)
			}
			if b, _ := os.ReadFile(outside); string(b) != "keep-me" {
				t.Errorf("the file outside was changed: %q", b)
			}
		})
	}
}

// TestWipeOwnFile: the file Write made is zeroed before it is unlinked
// (seen through a descriptor opened earlier).
func TestWipeOwnFile(t *testing.T) {
	d, err := Open(shmDir(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.Write("k", []byte("fake-secret"), 0o400)
	f, err := os.Open(d.File("k"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := d.Wipe(); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	n, _ := f.ReadAt(b, 0)
	if strings.Trim(string(b[:n]), "\x00") != "" {
		t.Fatalf("not zeroed: %q", b[:n])
	}
}

// TestStaleTempsLocked (issue 10 item 7a): a temporary file left by a
// writer killed between write and rename is removed by the next Open's
// RemoveStaleTemps, but not while a live writer holds the directory's
// shared lock.
func TestStaleTempsLocked(t *testing.T) {
	dir := shmDir(t)
	stale := filepath.Join(dir, ".k.tmp-0123456789abcdef")
	os.WriteFile(stale, []byte("partial"), 0o600)
	other, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	unix.Flock(other, unix.LOCK_SH) // a live writer elsewhere
	old := lockWait
	lockWait = 50 * time.Millisecond
	t.Cleanup(func() { lockWait = old })
	d, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if n := d.RemoveStaleTemps(); n != 0 {
		t.Fatalf("removed %d under a live writer's lock", n)
	}
	if err := d.Write("k", []byte("fake"), 0o400); err != nil { // shared with the other writer
		t.Fatal(err)
	}
	unix.Flock(other, unix.LOCK_UN)
	if n := d.RemoveStaleTemps(); n != 1 {
		t.Fatalf("RemoveStaleTemps = %d, want 1", n)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("stale temporary file left")
	}
}
