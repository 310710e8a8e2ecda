package tmpfs

import (
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Digest returns the SHA-256 of the regular file name in the directory,
// read without following symlinks; ok is false when there is no such
// regular file. A long-running writer (the broker) compares digests, not
// values, to decide whether a file must be replaced.
func (d *Dir) Digest(name string) (sum [sha256.Size]byte, ok bool, err error) {
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) {
		return sum, false, nil
	}
	if err != nil {
		return sum, false, &Error{Path: d.File(name), Msg: "cannot open it", Err: err}
	}
	f := os.NewFile(uintptr(fd), d.File(name))
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return sum, false, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, false, &Error{Path: d.File(name), Msg: "cannot read it", Err: err}
	}
	copy(sum[:], h.Sum(nil))
	return sum, true, nil
}

// Adopt records a regular file already in the directory (left by an
// earlier run of the same writer) as written by this Dir, so Wipe removes
// it too. It never removes or rewrites the file.
func (d *Dir) Adopt(name string) {
	d.mu.Lock()
	d.written[name] = true
	d.mu.Unlock()
}

// RemoveStaleTemps removes the temporary files (".NAME.tmp-HEX") a writer
// that died between create and rename (SIGKILL) left behind, and returns
// how many. It holds an exclusive flock on the directory meanwhile, and
// every writer holds a shared one from creating its temporary file to
// renaming it, so a live writer's file is never taken for a stale one
// (inject and the broker share a directory). It waits at most lockWait for
// the lock and skips the clean-up when it cannot have it.
func (d *Dir) RemoveStaleTemps() int {
	if !lockBounded(d.fd, unix.LOCK_EX) {
		return 0
	}
	defer unix.Flock(d.fd, unix.LOCK_UN)
	names, err := d.names()
	if err != nil {
		return 0
	}
	n := 0
	for _, name := range names {
		if IsTempName(name) {
			if unix.Unlinkat(d.fd, name, 0) == nil {
				n++
			}
		}
	}
	return n
}

// names lists the directory through its descriptor (a fresh open of "."
// in it, so the listing has its own offset), never through d.Path, which
// another user may have pointed elsewhere since Open.
func (d *Dir) names() ([]string, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), d.Path)
	defer f.Close()
	return f.Readdirnames(-1)
}

// IsTempName reports whether name is one of tempName's.
func IsTempName(name string) bool {
	i := strings.LastIndex(name, ".tmp-")
	return len(name) > 0 && name[0] == '.' && i > 0 && len(name)-i == len(".tmp-")+16
}

// lockWait bounds every wait for the directory's flock: a process that
// holds it forever (the app may open the directory too) must not block a
// write or a clean-up.
var lockWait = 2 * time.Second

func lockBounded(fd, how int) bool {
	deadline := time.Now().Add(lockWait)
	for {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		if err == nil {
			return true
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sharedLock takes the shared flock for one write; writers of the same Dir
// share it (a flock belongs to the descriptor, so only the last one
// releases it). release is safe to call when the lock was not had.
func (d *Dir) sharedLock() (release func()) {
	d.lockMu.Lock()
	defer d.lockMu.Unlock()
	if d.writers == 0 && !lockBounded(d.fd, unix.LOCK_SH) {
		return func() {}
	}
	d.writers++
	return func() {
		d.lockMu.Lock()
		defer d.lockMu.Unlock()
		if d.writers--; d.writers == 0 {
			unix.Flock(d.fd, unix.LOCK_UN)
		}
	}
}
