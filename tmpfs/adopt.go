package tmpfs

import (
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"strings"

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
// that died between create and rename left behind, and returns how many.
func (d *Dir) RemoveStaleTemps() int {
	f, err := os.Open(d.Path)
	if err != nil {
		return 0
	}
	names, _ := f.Readdirnames(-1)
	f.Close()
	n := 0
	for _, name := range names {
		if i := strings.LastIndex(name, ".tmp-"); name[0] == '.' && i > 0 && len(name)-i == len(".tmp-")+16 {
			if unix.Unlinkat(d.fd, name, 0) == nil {
				n++
			}
		}
	}
	return n
}
