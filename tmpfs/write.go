package tmpfs

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// CheckName is the file-name rule of docs/reference.md: [A-Za-z0-9._-], no leading
// dot, at most 255 bytes. It keeps every file directly inside the directory.
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > 255:
		return fmt.Errorf("name is %d bytes; the limit is 255", len(name))
	case name[0] == '.':
		return fmt.Errorf("name %q starts with a dot (hidden files, . and .. are not allowed)", name)
	}
	for i, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("name %q holds %q at byte %d; use only letters, digits, '.', '_' and '-'", name, c, i)
		}
	}
	return nil
}

// Write stores data as name, atomically: a temporary file is created beside
// it without following symlinks, filled, given its mode and owner, then
// renamed over name. A reader sees the old file or the new one, never a
// partial one. A symlink or directory already at name is refused, since
// something other than us put it there.
func (d *Dir) Write(name string, data []byte, mode fs.FileMode) error {
	if err := CheckName(name); err != nil {
		return &Error{Path: d.Path, Msg: "refusing to write", Err: err}
	}
	return d.write(name, data, mode)
}

// ReadyMarker is the file the broker writes after its first complete
// delivery, and that `inject wait` and `broker healthcheck` look for.
const ReadyMarker = ".ready"

// WriteMarker writes a dot-file such as .ready, which CheckName forbids for
// secrets so that markers and secrets never share a name.
func (d *Dir) WriteMarker(name string, data []byte) error {
	if len(name) < 2 || name[0] != '.' || CheckName(name[1:]) != nil {
		return &Error{Path: d.Path, Msg: fmt.Sprintf("bad marker name %q", name)}
	}
	return d.write(name, data, 0o444)
}

func (d *Dir) write(name string, data []byte, mode fs.FileMode) error {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return &Error{Path: d.File(name), Msg: "is a symlink that we did not create; refusing to write through or over it"}
	case err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG:
		return &Error{Path: d.File(name), Msg: "exists and is not a regular file"}
	case err != nil && !errors.Is(err, unix.ENOENT):
		return &Error{Path: d.File(name), Msg: "cannot inspect it", Err: err}
	}
	tmp := tempName(name)
	release := d.sharedLock()
	defer release()
	fd, err := openBeneath(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &Error{Path: d.File(name), Msg: "cannot create a temporary file", Err: err}
	}
	fail := func(msg string, err error) error {
		unix.Close(fd)
		_ = unix.Unlinkat(d.fd, tmp, 0)
		return &Error{Path: d.File(name), Msg: msg, Err: err}
	}
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if err != nil {
			return fail("cannot write", err)
		}
		rest = rest[n:]
	}
	if err := unix.Fchmod(fd, uint32(mode.Perm())); err != nil {
		return fail("cannot set its mode", err)
	}
	if d.owner != nil {
		if err := unix.Fchown(fd, d.owner.UID, d.owner.GID); err != nil {
			return fail("cannot give it to "+d.owner.String(), err)
		}
	}
	if !d.Memory {
		if err := unix.Fsync(fd); err != nil {
			return fail("cannot sync", err)
		}
	}
	if err := unix.Fstat(fd, &st); err != nil {
		return fail("cannot stat", err)
	}
	if err := unix.Close(fd); err != nil {
		_ = unix.Unlinkat(d.fd, tmp, 0)
		return &Error{Path: d.File(name), Msg: "cannot close", Err: err}
	}
	if err := unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
		_ = unix.Unlinkat(d.fd, tmp, 0)
		return &Error{Path: d.File(name), Msg: "cannot rename into place", Err: err}
	}
	d.mu.Lock()
	d.written[name] = true
	d.inodes[name] = fileID{uint64(st.Dev), st.Ino}
	d.mu.Unlock()
	if !d.Memory {
		// On a disk (--allow-disk) the rename is durable only once the
		// directory is synced; through its descriptor, like every write.
		if err := unix.Fsync(d.fd); err != nil {
			return &Error{Path: d.File(name), Msg: "cannot sync the directory", Err: err}
		}
	}
	return nil
}

// openBeneath opens name relative to dirfd with openat2's
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS where the kernel has it (5.6+), and
// plain openat with O_NOFOLLOW otherwise.
func openBeneath(dirfd int, name string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags), Mode: uint64(mode), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS}
	fd, err := unix.Openat2(dirfd, name, &how)
	// ENOSYS: kernel before 5.6; EPERM: a seccomp profile that predates
	// openat2 (older Docker). O_NOFOLLOW on a plain name is the fallback.
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		return unix.Openat(dirfd, name, flags, mode)
	}
	return fd, err
}

// Wipe overwrites each file this Dir wrote with zeros and removes it. It
// keeps going past errors and returns them all.
func (d *Dir) Wipe() error {
	var errs []error
	for _, name := range d.Written() {
		if err := d.wipeOne(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Remove wipes and removes one file this Dir wrote.
func (d *Dir) Remove(name string) error { return d.wipeOne(name) }

// wipeBudget bounds how much of one file a wipe overwrites: the app may
// have grown the file, and a wipe must end.
const wipeBudget = 16 << 20

// wipeOne never blocks on and never follows what the app may have put at
// name (it runs the app's user's directory under --supervise): it looks
// with lstat, overwrites only a regular file that is the one Write made
// (same device and inode, a single link), opened O_NONBLOCK|O_NOFOLLOW and
// checked again after opening, at most wipeBudget bytes; anything else (a
// FIFO, a device, a symlink, another file) is only unlinked, and a
// directory is left where it is, with an error.
func (d *Dir) wipeOne(name string) error {
	d.mu.Lock()
	want, known := d.inodes[name]
	d.mu.Unlock()
	forget := func() {
		d.mu.Lock()
		delete(d.written, name)
		delete(d.inodes, name)
		d.mu.Unlock()
	}
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		forget()
		return nil
	case err != nil:
		return &Error{Path: d.File(name), Msg: "cannot inspect it", Err: err}
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		forget()
		return &Error{Path: d.File(name), Msg: "is now a directory that we did not create; left in place"}
	case st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 1 && (!known || want == fileID{uint64(st.Dev), st.Ino}):
		d.overwrite(name, st)
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return &Error{Path: d.File(name), Msg: "cannot remove", Err: err}
	}
	forget()
	return nil
}

// overwrite zeros the regular file at name if it is still the inode seen.
func (d *Dir) overwrite(name string, seen unix.Stat_t) {
	fd, err := unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Dev != seen.Dev || st.Ino != seen.Ino {
		return // swapped between lstat and open
	}
	zeros := make([]byte, 4096)
	left := min(st.Size, wipeBudget)
	for left > 0 {
		n := min(int64(len(zeros)), left)
		w, err := unix.Write(fd, zeros[:n])
		if err != nil || w == 0 {
			break
		}
		left -= int64(w)
	}
}
