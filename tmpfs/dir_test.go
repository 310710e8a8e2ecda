package tmpfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/secretbroker/secretbroker/identity"
)

// shmDir makes a directory on /dev/shm, which is tmpfs on Linux.
func shmDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "tmpfs-test")
	if err != nil {
		t.Skip("no /dev/shm:", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if mem, _ := IsMemory(d); !mem {
		t.Skip("/dev/shm is not tmpfs here")
	}
	return d
}

func TestWriteAtomicModeOwner(t *testing.T) {
	d, err := Open(shmDir(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Write("db_password", []byte("fake-1"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := d.Write("db_password", []byte("fake-2"), 0o440); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(d.File("db_password"))
	if err != nil || fi.Mode().Perm() != 0o440 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(d.File("db_password"))
	if string(b) != "fake-2" {
		t.Fatalf("content %q", b)
	}
	entries, _ := os.ReadDir(d.Path)
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	if err := d.Wipe(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(d.Path); len(entries) != 0 {
		t.Fatalf("wipe left %v", entries)
	}
}

func TestHostileNames(t *testing.T) {
	d, err := Open(shmDir(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, name := range []string{"../x", "a/b", ".hidden", "nul\x00byte", "", ".", "..", strings.Repeat("a", 256)} {
		if err := d.Write(name, []byte("fake"), 0o400); err == nil {
			t.Errorf("Write(%q) succeeded", name)
		}
	}
	if entries, _ := os.ReadDir(d.Path); len(entries) != 0 {
		t.Fatalf("hostile names wrote %v", entries)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(d.Path), "x")); err == nil {
		t.Fatal("../x escaped the directory")
	}
}

func TestSymlinkAtName(t *testing.T) {
	base := shmDir(t)
	outside := filepath.Join(base, "outside")
	os.WriteFile(outside, []byte("original"), 0o600)
	dir := filepath.Join(base, "secrets")
	os.Mkdir(dir, 0o700)
	os.Symlink(outside, filepath.Join(dir, "token"))
	d, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Write("token", []byte("fake"), 0o400)
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("wrote over a planted symlink: %v", err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "original" {
		t.Fatal("the symlink's target was changed")
	}
}

func TestDirIsSymlink(t *testing.T) {
	base := shmDir(t)
	real := filepath.Join(base, "real")
	os.Mkdir(real, 0o700)
	link := filepath.Join(base, "link")
	os.Symlink(real, link)
	if _, err := Open(link, Options{}); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("accepted a symlinked directory: %v", err)
	}
}

func TestDiskRefused(t *testing.T) {
	dir := t.TempDir()
	if mem, _ := IsMemory(dir); mem {
		t.Skip("the temp dir is memory-backed here; no disk to refuse")
	}
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "disk-backed") {
		t.Fatalf("disk dir accepted: %v", err)
	}
	d, err := Open(dir, Options{AllowDisk: true})
	if err != nil {
		t.Fatalf("--allow-disk: %v", err)
	}
	d.Close()
}

func TestMissingExplicitDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope", "deeper")
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("got %v", err)
	}
}

func TestFallback(t *testing.T) {
	xdg := shmDir(t)
	missing := filepath.Join(t.TempDir(), "missing", "secretbroker")
	d, err := Open(missing, Options{Fallback: true, RuntimeDir: xdg})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Path != filepath.Join(xdg, "secretbroker") {
		t.Fatalf("fell back to %s", d.Path)
	}
	fi, _ := os.Stat(d.Path)
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("fallback mode %v", fi.Mode())
	}
	// A fallback someone else made, or with a loose mode, is refused.
	os.Chmod(d.Path, 0o755)
	d2, err := Open(missing, Options{Fallback: true, RuntimeDir: xdg})
	if err == nil && d2.Path == d.Path {
		t.Fatal("accepted a 0755 fallback")
	}
	if d2 != nil {
		d2.Close()
	}
}

func TestOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := filepath.Join(shmDir(t), "s") // missing: we create it, so we hand it over
	os.Chmod(filepath.Dir(dir), 0o755)
	d, err := Open(dir, Options{Owner: &identity.Identity{UID: 1000, GID: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Write("k", []byte("fake"), 0o400); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]uint32{dir: 0o700, d.File("k"): 0o400} {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 1000 || st.Gid != 1000 || st.Mode&0o7777 != mode {
			t.Errorf("%s: owner %d:%d mode %o, want 1000:1000 %o", p, st.Uid, st.Gid, st.Mode&0o7777, mode)
		}
	}
}

// TestDirOurs (issue 10 item 5): an explicitly chosen directory is ours
// alone or refused; one we did not create is never chowned or chmodded.
func TestDirOurs(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to make directories of other users")
	}
	user := &identity.Identity{UID: 1000, GID: 1000}
	tests := []struct {
		name     string
		uid, gid int
		mode     os.FileMode
		owner    *identity.Identity
		want     string // "" accepted
		wantMode uint32 // accepted: the mode left (unchanged)
	}{
		{"root 0700", 0, 0, 0o700, nil, "", 0o700},
		{"root 0755 for --user", 0, 0, 0o755, user, "", 0o755},
		{"root 0711 for --user", 0, 0, 0o711, user, "", 0o711},
		{"target user's own", 1000, 1000, 0o700, user, "", 0o700},
		{"shared sticky 1777", 0, 0, 0o1777 | os.ModeSticky, nil, "is a shared directory (mode 1777) that anyone can write; use a subdirectory", 0},
		{"shared sticky 1777 for --user", 0, 0, 0o777 | os.ModeSticky, user, "shared directory", 0},
		{"world-writable 0777", 0, 0, 0o777, nil, "writable by group or others (mode 0777)", 0},
		{"group-writable 0770", 0, 0, 0o770, nil, "writable by group or others (mode 0770)", 0},
		{"another user's", 1001, 1001, 0o700, nil, "is owned by uid 1001, which is neither root nor us", 0},
		{"another user's for --user", 1001, 1001, 0o700, user, "nor --user 1000:1000", 0},
		{"root 0700 for --user", 0, 0, 0o700, user, "inject did not create it, so it will not chown it", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := shmDir(t)
			os.Chmod(base, 0o755)
			dir := filepath.Join(base, "s")
			os.Mkdir(dir, 0o700)
			os.Chown(dir, tt.uid, tt.gid)
			os.Chmod(dir, tt.mode)
			d, err := Open(dir, Options{Owner: tt.owner})
			if tt.want != "" {
				if err == nil {
					d.Close()
					t.Fatalf("accepted")
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want %q", err, tt.want)
				}
			} else if err != nil {
				t.Fatal(err)
			} else {
				d.Close()
			}
			var st unix.Stat_t
			unix.Stat(dir, &st)
			if int(st.Uid) != tt.uid || (tt.wantMode != 0 && st.Mode&0o7777 != tt.wantMode) {
				t.Errorf("changed to %d:%d %o", st.Uid, st.Gid, st.Mode&0o7777)
			}
		})
	}
	for _, shared := range []string{"/dev/shm", "/tmp"} {
		if _, err := Open(shared, Options{AllowDisk: true}); err == nil || !strings.Contains(err.Error(), "shared directory") {
			t.Errorf("Open(%s) = %v, want it refused as shared", shared, err)
		}
	}
}

// TestFallbackPerUser: a fallback handed to one --user does not stop a
// later run for another.
func TestFallbackPerUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown")
	}
	root := shmDir(t)
	os.Chmod(root, 0o755)
	old := FallbackRoot
	FallbackRoot = root
	t.Cleanup(func() { FallbackRoot = old })
	missing := filepath.Join(t.TempDir(), "missing", "secretbroker")
	for _, uid := range []int{1000, 1001, 1000} {
		d, err := Open(missing, Options{Fallback: true, Owner: &identity.Identity{UID: uid, GID: uid}})
		if err != nil {
			t.Fatalf("uid %d: %v", uid, err)
		}
		if want := filepath.Join(root, fmt.Sprintf("secretbroker-%d", uid)); d.Path != want {
			t.Errorf("uid %d: %s, want %s", uid, d.Path, want)
		}
		d.Close()
	}
}

func TestMount(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("--mount needs root")
	}
	for _, api := range []bool{true, false} {
		t.Run(fmt.Sprintf("new mount API %v", api), func(t *testing.T) {
			old := newMountAPI
			newMountAPI = api
			t.Cleanup(func() { newMountAPI = old })
			testMount(t)
		})
	}
}

func testMount(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets") // on disk, missing
	d, err := Open(dir, Options{Mount: true})
	if err != nil {
		if strings.Contains(err.Error(), "operation not permitted") {
			t.Skip("this sandbox may not mount:", err)
		}
		t.Fatal(err)
	}
	defer func() {
		d.Close()
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	}()
	if !d.Mounted || !d.Memory {
		t.Fatalf("mounted %v memory %v", d.Mounted, d.Memory)
	}
	if mem, _ := IsMemory(dir); !mem {
		t.Fatal("no tmpfs at the directory")
	}
	if err := d.Write("token", []byte("fake"), 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "token")); err != nil {
		t.Fatalf("the file is not in the tmpfs at the path: %v", err)
	}
}

// TestDirSwappedAfterOpen: once open, the directory is the descriptor,
// not the path. Another directory put at the path afterwards gets no
// file, and its names are not taken for ours (stale-temp clean-up lists
// through the descriptor).
func TestDirSwappedAfterOpen(t *testing.T) {
	base := shmDir(t)
	dir := filepath.Join(base, "s")
	os.Mkdir(dir, 0o700)
	d, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	stale := tempName("token")
	os.WriteFile(filepath.Join(dir, stale), nil, 0o600)
	os.Rename(dir, dir+".moved")
	os.Mkdir(dir, 0o700)
	other := filepath.Join(dir, tempName("other"))
	os.WriteFile(other, nil, 0o600)
	if err := d.Write("token", []byte("fake"), 0o400); err != nil {
		t.Fatal(err)
	}
	if n := d.RemoveStaleTemps(); n != 1 {
		t.Errorf("removed %d stale temporary files, want 1", n)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("removed a file of the directory now at the path: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir+".moved", "token")); err != nil {
		t.Errorf("the file is not in the directory that was opened: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "token")); err == nil {
		t.Error("the file went to the directory now at the path")
	}
}

// TestOpenParentSymlink: a symlink above the directory is resolved once
// (Path is the real place, which dirs: is matched on).
func TestOpenParentSymlink(t *testing.T) {
	base := shmDir(t)
	os.Mkdir(filepath.Join(base, "real"), 0o755)
	os.Symlink("real", filepath.Join(base, "link"))
	d, err := Open(filepath.Join(base, "link", "s"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if want := filepath.Join(base, "real", "s"); d.Path != want {
		t.Errorf("Path %s, want %s", d.Path, want)
	}
}

// A fallback directory someone else made is refused, even with mode 0700.
func TestFallbackOwnedBySomeoneElse(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to make a directory owned by another user")
	}
	xdg := shmDir(t)
	planted := filepath.Join(xdg, "secretbroker")
	os.Mkdir(planted, 0o700)
	os.Chown(planted, 1000, 1000)
	missing := filepath.Join(t.TempDir(), "missing", "secretbroker")
	d, err := Open(missing, Options{Fallback: true, RuntimeDir: xdg})
	if err == nil {
		defer d.Close()
		if d.Path == planted {
			t.Fatal("accepted a fallback directory owned by uid 1000")
		}
		return // fell through to /dev/shm/secretbroker-0
	}
	if !strings.Contains(err.Error(), "someone else made it") {
		t.Fatalf("got %v", err)
	}
}
