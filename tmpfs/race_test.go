package tmpfs

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The race tests (issue 10 item 5): another local user who may write the
// secrets directory's parent (mode 0777, or 1777 like /tmp) swaps the
// directory, or a directory above it, for a symlink to a directory of
// theirs while Open checks it and the writes run. Whatever the timing, a
// secret must never land in the attacker's directory, nor on a disk when
// the directory had to be memory-backed.

// attackerUID is the unprivileged user the attacker runs as.
const attackerUID = 65534

// TestRaceAttacker is the attacker, run by startAttacker as uid 65534 via
// setpriv; it does nothing in a normal run. It swaps SB_RACE_TARGET (a
// directory) with a symlink to SB_RACE_DECOY until killed.
func TestRaceAttacker(t *testing.T) {
	target := os.Getenv("SB_RACE_TARGET")
	if target == "" {
		t.Skip("the attacker half of the race tests")
	}
	decoy, hold := os.Getenv("SB_RACE_DECOY"), target+".hold"
	for {
		moved := os.Rename(target, hold) == nil
		os.Symlink(decoy, target)
		for range 50 {
			unix.Getpid() // hold the symlink in place a moment
		}
		os.Remove(target)
		if moved {
			os.Rename(hold, target)
		}
	}
}

// startAttacker runs TestRaceAttacker as attackerUID and stops it at
// cleanup.
func startAttacker(t *testing.T, target, decoy string) {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux) to run the attacker as another user")
	}
	id := strconv.Itoa(attackerUID)
	cmd := exec.Command(setpriv, "--reuid="+id, "--regid="+id, "--clear-groups", "--",
		os.Args[0], "-test.run=^TestRaceAttacker$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SB_RACE_TARGET="+target, "SB_RACE_DECOY="+decoy)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// raceTree makes base/shared (mode parentMode, on the disk under
// t.TempDir) and an attacker-owned decoy directory on /dev/shm (memory,
// so a path swapped to it passes a memory check made on the path) holding
// an attacker-owned "secrets" directory.
func raceTree(t *testing.T, parentMode os.FileMode) (shared, decoy string) {
	t.Helper()
	base := t.TempDir()
	for p := base; p != "/"; p = filepath.Dir(p) {
		if strings.HasPrefix(p, os.TempDir()+"/") {
			os.Chmod(p, 0o755) // let the attacker reach shared
		}
	}
	shared = filepath.Join(base, "shared")
	os.Mkdir(shared, 0o700)
	if err := os.Chmod(shared, parentMode); err != nil {
		t.Fatal(err)
	}
	decoy = shmDir(t)
	os.Mkdir(filepath.Join(decoy, "secrets"), 0o777)
	for _, p := range []string{decoy, filepath.Join(decoy, "secrets")} {
		os.Chown(p, attackerUID, attackerUID)
		os.Chmod(p, 0o777)
	}
	return shared, decoy
}

// landed lists the files under the attacker's decoy.
func landed(t *testing.T, decoy string) []string {
	var got []string
	filepath.WalkDir(decoy, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got = append(got, p)
		}
		return nil
	})
	return got
}

// victim opens path and writes a secret in a loop for dur, checking on
// each accepted directory that its descriptor is memory-backed unless
// allowDisk, and after each write that nothing landed under decoy; it
// returns how many opens were accepted and refused.
func victim(t *testing.T, path, decoy string, o Options, dur time.Duration, cleanup func()) (ok, refused int) {
	t.Helper()
	o.Logger = slog.New(slog.DiscardHandler)
	for end := time.Now().Add(dur); time.Now().Before(end); {
		d, err := Open(path, o)
		if err != nil {
			refused++
			if cleanup != nil {
				cleanup()
			}
			continue
		}
		ok++
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(d.fd, &sfs); err != nil {
			t.Fatal(err)
		}
		if !o.AllowDisk && sfs.Type != unix.TMPFS_MAGIC && sfs.Type != unix.RAMFS_MAGIC {
			t.Errorf("accepted a disk-backed directory (%s) without --allow-disk", d.Path)
		}
		if err := d.Write("token", []byte("race-canary"), 0o400); err == nil {
			if got := landed(t, decoy); len(got) > 0 {
				t.Errorf("a secret landed in the attacker's directory: %v", got)
			}
			d.Wipe()
		}
		d.Close()
		if cleanup != nil {
			cleanup()
		}
	}
	return ok, refused
}

func needRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run an attacker as another user")
	}
}

// TestRaceSwap runs each race in a 0777 and a 1777 parent.
func TestRaceSwap(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name string
		// nested: the attacker swaps shared/mid (the directory is
		// shared/mid/secrets) for a symlink to the decoy, whose "secrets"
		// is on tmpfs: a check made on the path sees memory while the
		// writes would go to the disk directory. Otherwise shared/secrets
		// itself is swapped for a symlink to decoy/secrets.
		nested bool
		exists bool // the platform made the directory (root, 0700); else Open creates it
		o      Options
	}{
		{"dir", false, true, Options{AllowDisk: true}},
		{"parent", true, true, Options{}},
		{"create", false, false, Options{AllowDisk: true}},
	}
	for _, tt := range tests {
		for _, mode := range []os.FileMode{0o777, 0o777 | os.ModeSticky} {
			t.Run(tt.name+"/"+mode.String(), func(t *testing.T) {
				shared, decoy := raceTree(t, mode)
				target, to := filepath.Join(shared, "secrets"), filepath.Join(decoy, "secrets")
				dir := target
				if tt.nested {
					target, to = filepath.Join(shared, "mid"), decoy
					os.Mkdir(target, 0o755)
					dir = filepath.Join(target, "secrets")
				}
				if tt.exists {
					os.Mkdir(dir, 0o700)
				}
				startAttacker(t, target, to)
				cleanup := func() {
					if tt.exists {
						return
					}
					// Remove what Open created, wherever the attacker moved it.
					for _, p := range []string{dir, dir + ".hold"} {
						var st unix.Stat_t
						if unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Uid == 0 {
							os.Remove(p)
						}
					}
				}
				ok, refused := victim(t, dir, decoy, tt.o, time.Second, cleanup)
				t.Logf("%d opens accepted, %d refused", ok, refused)
			})
		}
	}
}

// TestRaceMount: --mount while the attacker swaps a directory above the
// mount point for a symlink into their tree. A mount made by path would
// put the tmpfs, and the secrets, under the attacker's directory, or mount
// it there and write to the disk directory left at the path. It runs in a
// private mount namespace (unshare), so no mount outlives it.
func TestRaceMount(t *testing.T) {
	needRoot(t)
	if os.Getenv("SB_RACE_NS") == "" {
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("needs unshare (util-linux) for a private mount namespace")
		}
		cmd := exec.Command(unshare, "--mount", "--propagation", "private", "--",
			os.Args[0], "-test.run=^TestRaceMount$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "SB_RACE_NS=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in a private mount namespace:\n%s", out)
		if err != nil {
			if strings.Contains(string(out), "unshare failed") {
				t.Skip("cannot make a mount namespace here")
			}
			t.Fatal(err)
		}
		return
	}
	shared, decoy := raceTree(t, 0o777)
	mid := filepath.Join(shared, "mid")
	os.Mkdir(mid, 0o755)
	dir := filepath.Join(mid, "secrets")
	startAttacker(t, mid, decoy)
	cleanup := func() {
		for _, p := range []string{dir, mid + ".hold/secrets", filepath.Join(decoy, "secrets")} {
			for unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW) == nil {
			}
		}
	}
	ok, refused := victim(t, dir, decoy, Options{Mount: true}, time.Second, cleanup)
	t.Logf("%d opens accepted, %d refused", ok, refused)
}

// TestRaceWrites: the directory is swapped while an open Dir writes,
// replaces, lists and wipes (what inject and the broker do after Open):
// every one of those goes through the descriptor, so nothing lands in the
// attacker's directory.
func TestRaceWrites(t *testing.T) {
	needRoot(t)
	shared, decoy := raceTree(t, 0o777)
	dir := filepath.Join(shared, "secrets")
	os.Mkdir(dir, 0o700)
	d, err := Open(dir, Options{AllowDisk: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	startAttacker(t, dir, filepath.Join(decoy, "secrets"))
	n := 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); n++ {
		if err := d.Write("token", []byte("race-canary"), 0o400); err != nil {
			t.Fatal(err)
		}
		if err := d.WriteMarker(ReadyMarker, []byte("now\n")); err != nil {
			t.Fatal(err)
		}
		d.RemoveStaleTemps()
		if got := landed(t, decoy); len(got) > 0 {
			t.Fatalf("a secret landed in the attacker's directory: %v", got)
		}
		if err := d.Wipe(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d rounds of write, marker, clean-up and wipe", n)
}
