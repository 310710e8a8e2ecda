// Package tmpfs is the memory-backed directory secrets are written to. It
// refuses a disk-backed directory unless told otherwise, mounts a tmpfs only
// when asked (so it never leaves a mount behind on a host), and writes every
// file atomically through a directory file descriptor without following
// symlinks, so neither a planted link nor a half-written file can be seen.
package tmpfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/secretbroker/secretbroker/identity"
	"github.com/secretbroker/secretbroker/readgate"
)

// Options says how Open may treat the directory.
type Options struct {
	AllowDisk bool               // accept a disk-backed directory (--allow-disk)
	Mount     bool               // mount a tmpfs on it when it is not one (--mount)
	Owner     *identity.Identity // --user: owns the directory (0700) and the files
	Fallback  bool               // the path is the default, not the user's choice: fall back when it is missing
	// RuntimeDir is $XDG_RUNTIME_DIR as the declaration's environment has
	// it (spec.Getenv), the first fallback without --user; "" for none.
	RuntimeDir string
	Logger     *slog.Logger
}

// Error is a refused or unwritable directory (exit 73).
type Error struct {
	Path string
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	s := e.Path + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Dir is an open secrets directory.
type Dir struct {
	Path    string
	Memory  bool // tmpfs or ramfs
	Mounted bool // we mounted it
	fd      int
	owner   *identity.Identity
	mu      sync.Mutex
	written map[string]bool
	inodes  map[string]fileID // what Write put at each name
	lockMu  sync.Mutex        // guards writers
	writers int               // writes holding the shared flock
}

// fileID is a file's device and inode.
type fileID struct{ dev, ino uint64 }

// IsMemory reports whether path is on tmpfs or ramfs.
func IsMemory(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC, nil
}

// Open prepares the directory: checks or mounts it, falls back when the
// default is missing, sets its owner, and opens it for writing.
//
// Everything is decided on what is actually used, because the parent may
// be writable by others (mode 0777, or 1777 like /tmp), who could swap the
// directory or a directory above it for a symlink between a check and a
// use: the parent's path is resolved once and opened with no symlink
// allowed on the way (openat2 RESOLVE_NO_SYMLINKS), the directory is
// created (mkdirat) and opened (O_NOFOLLOW) relative to that descriptor,
// its owner, mode and file system are read from its own descriptor
// (fstat, fstatfs), a tmpfs is mounted on that descriptor, and every later
// write, rename, unlink and listing is relative to the directory's
// descriptor. os.Root is not used: it follows symlinks inside the root and
// cannot flock, fchown or mount.
func Open(path string, o Options) (*Dir, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	path = filepath.Clean(path)
	if o.Owner != nil && os.Geteuid() != 0 && o.Owner.UID != os.Geteuid() {
		// Checked before anything is created: only root may chown.
		return nil, &Error{Path: path, Msg: fmt.Sprintf("giving the directory and files to --user %s needs root (running as uid %d); run as root, or drop --user and run as that user", o.Owner, os.Geteuid())}
	}
	if o.Mount {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, &Error{Path: path, Msg: "cannot create it to mount a tmpfs", Err: err}
		}
	}
	parent, pfd, err := openParent(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{Path: path, Msg: "cannot open its parent directory", Err: err}
	}
	if pfd >= 0 {
		defer unix.Close(pfd)
	}
	base := filepath.Base(path)
	created, exists := false, false
	if pfd >= 0 {
		if exists, err = lookAt(pfd, base, path); err != nil {
			return nil, err
		}
	}
	if !exists {
		switch {
		case pfd >= 0 && (o.Mount || fdIsMemory(pfd) || o.AllowDisk):
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				if o.Fallback {
					return openFallback(path, o, log)
				}
				return nil, &Error{Path: path, Msg: "does not exist and cannot be created", Err: err}
			}
			created = true
		case o.Fallback:
			return openFallback(path, o, log)
		case o.AllowDisk:
			return nil, &Error{Path: path, Msg: "does not exist and cannot be created", Err: unix.ENOENT}
		default:
			return nil, &Error{Path: path, Msg: "does not exist; give the container a tmpfs there (docker run --tmpfs " + path + ", a compose tmpfs volume, or an emptyDir with medium: Memory), or pass --mount"}
		}
	}
	return prepare(pfd, filepath.Join(parent, base), o, created, false, log)
}

// openParent resolves the symlinks of path's parent now (a path such as
// /var/run/secrets is fine) and opens the result with none allowed, so a
// symlink planted on the way afterwards is refused rather than followed.
// It returns the resolved parent and an O_PATH descriptor of it (-1 with
// an error wrapping fs.ErrNotExist when the parent is missing).
func openParent(path string) (string, int, error) {
	parent, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return "", -1, err
	}
	if parent, err = filepath.Abs(parent); err != nil {
		return "", -1, err
	}
	fd, err := readgate.OpenNoSymlinks(parent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
			return "", -1, fmt.Errorf("a symlink appeared on the way to %s after it was resolved", parent)
		}
		return "", -1, err
	}
	return parent, fd, nil
}

// lookAt reports whether base exists in the directory pfd; what is there
// must be a directory, not a symlink (which could send the secrets
// anywhere) nor anything else. path names it in messages.
func lookAt(pfd int, base, path string) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, nil
	case err != nil:
		return false, &Error{Path: path, Msg: "cannot inspect it", Err: err}
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return false, &Error{Path: path, Msg: "is a symlink; give the real directory, so nobody can redirect where secrets go"}
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return false, &Error{Path: path, Msg: "exists and is not a directory"}
	}
	return true, nil
}

// fdIsMemory reports whether the open file fd is on tmpfs or ramfs.
func fdIsMemory(fd int) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(fd, &st) == nil && (st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC)
}

// prepare opens path's last element in the parent pfd without following a
// symlink and decides on that descriptor: it must be the directory we
// just made when created, it must be memory-backed (or a tmpfs is mounted
// on it, or disk is allowed), and it must be ours (setOwner; for a
// fallback, private: ours alone, mode 0700). On failure it removes the
// directory it created, if that is still what the name holds, and
// unmounts what it mounted.
func prepare(pfd int, path string, o Options, created, private bool, log *slog.Logger) (d *Dir, err error) {
	base := filepath.Base(path)
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, &Error{Path: path, Msg: "was swapped for a symlink or a file while being opened; refusing it", Err: err}
		}
		return nil, &Error{Path: path, Msg: "cannot open it", Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &Error{Path: path, Msg: "cannot stat it", Err: err}
	}
	mounted := false
	defer func() {
		if err == nil {
			return
		}
		if mounted {
			_ = unix.Unmount(fdPath(fd), unix.MNT_DETACH)
		}
		unix.Close(fd)
		var now unix.Stat_t
		if created && unix.Fstatat(pfd, base, &now, unix.AT_SYMLINK_NOFOLLOW) == nil && now.Dev == st.Dev && now.Ino == st.Ino {
			_ = unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
		}
	}()
	if created && (int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0) {
		// Still the directory we made (0700, ours)? In a parent that others
		// may write, it could have been swapped between mkdirat and openat.
		return nil, &Error{Path: path, Msg: fmt.Sprintf("changed between creating and opening it (now uid %d, mode %04o); refusing it", st.Uid, st.Mode&0o7777)}
	}
	if private && !created {
		if err := checkPrivate(path, &st, o.Owner); err != nil {
			return nil, err
		}
	}
	mem := fdIsMemory(fd)
	if !mem && o.Mount {
		opts := map[string]string{"mode": "0700", "size": "16m"}
		if o.Owner != nil {
			opts["uid"], opts["gid"] = strconv.Itoa(o.Owner.UID), strconv.Itoa(o.Owner.GID)
		}
		root, err := mountTmpfs(pfd, base, fd, &st, opts)
		if err != nil {
			return nil, &Error{Path: path, Msg: "cannot mount a tmpfs (--mount needs CAP_SYS_ADMIN; in a container give it a tmpfs instead)", Err: err}
		}
		unix.Close(fd)
		fd, mem, mounted = root, true, true
		log.Info("mounted a tmpfs for secrets", "dir", path)
	}
	if !mem {
		if !o.AllowDisk {
			return nil, &Error{Path: path, Msg: "is on a disk-backed file system, so secrets would reach the disk; use a tmpfs (docker run --tmpfs " + path + ", or --mount), or pass --allow-disk to accept it"}
		}
		log.Warn("secrets directory is disk-backed; secrets will reach the disk (--allow-disk)", "dir", path)
	}
	d = &Dir{Path: path, Memory: mem, Mounted: mounted, fd: fd, owner: o.Owner, written: map[string]bool{}, inodes: map[string]fileID{}}
	if err := d.setOwner(created); err != nil {
		return nil, err
	}
	return d, nil
}

// fdPath names an open descriptor for the calls that take only a path
// (umount, classic mount); the kernel resolves it to what fd holds.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// mountTmpfs mounts a tmpfs with opts on the directory fd (which is base
// in pfd, stat st) and returns a descriptor of the new tmpfs's root. With
// the new mount API (fsopen, fsmount, move_mount; Linux 5.2+) the tmpfs is
// made detached, its root descriptor is what we write to, and it is moved
// onto fd itself, so no path is resolved at all. Without it (ENOSYS, or a
// seccomp profile that predates it: EPERM), mount(2) is given fd's
// /proc/self/fd path and the root is opened again as base in pfd and
// accepted only if it is a tmpfs that was not there before (another
// device than st) and still 0700 and ours.
func mountTmpfs(pfd int, base string, fd int, st *unix.Stat_t, opts map[string]string) (int, error) {
	if newMountAPI {
		root, err := fsmountTmpfs(fd, opts)
		if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
			return root, err
		}
	}
	data := ""
	for _, k := range []string{"mode", "size", "uid", "gid"} {
		if v, ok := opts[k]; ok {
			if data != "" {
				data += ","
			}
			data += k + "=" + v
		}
	}
	if err := unix.Mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, data); err != nil {
		return -1, err
	}
	root, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	var rst unix.Stat_t
	if err == nil && (unix.Fstat(root, &rst) != nil || !fdIsMemory(root) || rst.Dev == st.Dev || rst.Mode&0o077 != 0) {
		unix.Close(root)
		root, err = -1, errors.New("the mount point was swapped while mounting")
	}
	if err != nil {
		_ = unix.Unmount(fdPath(fd), unix.MNT_DETACH)
		return -1, err
	}
	return root, nil
}

// newMountAPI is false only in this package's tests of the mount(2) path.
var newMountAPI = true

// fsmountTmpfs is mountTmpfs with the new mount API.
func fsmountTmpfs(fd int, opts map[string]string) (int, error) {
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fsfd)
	for k, v := range opts {
		if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
			return -1, fmt.Errorf("tmpfs option %s: %w", k, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, err
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return -1, err
	}
	root, err := unix.Openat(mfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = unix.Unmount(fdPath(mfd), unix.MNT_DETACH)
		return -1, err
	}
	return root, nil
}

// setOwner checks that the directory is ours alone, and gives one we
// created to --user with mode 0700. Whether we created it or not, it must
// be owned by root, by inject's effective user or by the --user it was
// handed to earlier, and neither group nor others may write it: a shared
// directory such as /dev/shm or /tmp (mode 1777) is refused as the secrets
// directory itself, since anyone could plant names in it. A directory we
// did not create is never chowned or chmodded; under --user it must already
// let that user in.
func (d *Dir) setOwner(created bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return &Error{Path: d.Path, Msg: "cannot stat it", Err: err}
	}
	if created {
		// prepare checked it is still the directory we made.
		if d.owner == nil {
			return nil // made 0700 by us, for us
		}
		if err := unix.Fchown(d.fd, d.owner.UID, d.owner.GID); err != nil {
			return &Error{Path: d.Path, Msg: "cannot give it to " + d.owner.String(), Err: err}
		}
		if err := unix.Fchmod(d.fd, 0o700); err != nil {
			return &Error{Path: d.Path, Msg: "cannot set its mode to 0700", Err: err}
		}
		return nil
	}
	return checkOurs(d.Path, &st, d.owner)
}

// checkOurs is setOwner's rule for a directory someone prepared.
func checkOurs(path string, st *unix.Stat_t, owner *identity.Identity) error {
	uid := int(st.Uid)
	if uid != 0 && uid != os.Geteuid() && (owner == nil || uid != owner.UID) {
		return &Error{Path: path, Msg: fmt.Sprintf("is owned by uid %d, which is neither root nor us (uid %d)%s; another user could replace the secrets", uid, os.Geteuid(), ownerNote(owner))}
	}
	if st.Mode&0o022 != 0 {
		msg := fmt.Sprintf("is writable by group or others (mode %04o), so someone else could plant or replace files in it", st.Mode&0o7777)
		if st.Mode&unix.S_ISVTX != 0 && st.Mode&0o002 != 0 {
			msg = fmt.Sprintf("is a shared directory (mode %04o) that anyone can write; use a subdirectory of it, or give the container a private tmpfs (docker run --tmpfs %s:mode=0700,uid=UID,gid=GID)", st.Mode&0o7777, path)
		}
		return &Error{Path: path, Msg: msg}
	}
	if owner != nil && uid != owner.UID {
		if err := owner.CheckEnter(path); err != nil {
			return &Error{Path: path, Msg: fmt.Sprintf("inject did not create it, so it will not chown it; mount it for the app's user (docker run --tmpfs %s:mode=0700,uid=%d,gid=%d)", path, owner.UID, owner.GID), Err: err}
		}
	}
	return nil
}

func ownerNote(owner *identity.Identity) string {
	if owner == nil {
		return ""
	}
	return fmt.Sprintf(" nor --user %s", owner)
}

// FallbackRoot holds the per-user fallback directories. It is a variable
// only so this package's tests can point it elsewhere.
var FallbackRoot = "/dev/shm"

// openFallback tries $XDG_RUNTIME_DIR/secretbroker (without --user), then
// /dev/shm/secretbroker-UID, UID being --user's or else inject's own. A fallback is accepted only when it is not a
// symlink, is a directory owned by the effective user with mode 0700, and
// is memory-backed; it is created so when missing.
func openFallback(wanted string, o Options, log *slog.Logger) (*Dir, error) {
	var cands []string
	uid := os.Geteuid()
	if o.Owner != nil {
		// Per target user: a directory handed to one user must not stop a
		// later run for another. $XDG_RUNTIME_DIR is the invoker's, which
		// the target user could not enter.
		uid = o.Owner.UID
	} else if x := o.RuntimeDir; x != "" && filepath.IsAbs(x) {
		cands = append(cands, filepath.Join(x, "secretbroker"))
	}
	cands = append(cands, fmt.Sprintf("%s/secretbroker-%d", FallbackRoot, uid))
	var reasons []string
	for _, c := range cands {
		d, err := openPrivate(c, o, log)
		if err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		log.Warn("secrets directory is missing; using a fallback (set dir: or --dir, or give the container a tmpfs there)", "wanted", wanted, "using", d.Path)
		return d, nil
	}
	return nil, &Error{Path: wanted, Msg: "does not exist, and no fallback was usable: " + joinReasons(reasons)}
}

// openPrivate opens a fallback directory, creating it 0700 when missing;
// one that exists must be ours alone (checkPrivate) and memory-backed.
func openPrivate(dir string, o Options, log *slog.Logger) (*Dir, error) {
	parent, pfd, err := openParent(dir)
	if err != nil {
		return nil, &Error{Path: dir, Msg: "cannot open its parent directory", Err: err}
	}
	defer unix.Close(pfd)
	base := filepath.Base(dir)
	exists, err := lookAt(pfd, base, dir)
	if err != nil {
		return nil, err
	}
	if !exists {
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return nil, &Error{Path: dir, Msg: "cannot create it", Err: err}
		}
	}
	o.Fallback, o.AllowDisk, o.Mount = false, false, false
	return prepare(pfd, filepath.Join(parent, base), o, !exists, true, log)
}

func joinReasons(r []string) string {
	s := ""
	for i, x := range r {
		if i > 0 {
			s += "; "
		}
		s += x
	}
	return s
}

// checkPrivate is the rule for a fallback directory that already exists:
// owned by the effective user (or by the --user it was handed to earlier)
// and mode 0700, since it is a well-known name anyone could have made.
func checkPrivate(dir string, st *unix.Stat_t, owner *identity.Identity) error {
	if int(st.Uid) != os.Geteuid() && (owner == nil || int(st.Uid) != owner.UID) {
		return &Error{Path: dir, Msg: fmt.Sprintf("owned by uid %d, not by us (uid %d); someone else made it, refusing it", st.Uid, os.Geteuid())}
	}
	if st.Mode&0o7777 != 0o700 {
		return &Error{Path: dir, Msg: fmt.Sprintf("mode %04o, want 0700; refusing it", st.Mode&0o7777)}
	}
	return nil
}

// Close releases the directory descriptor. It leaves the files in place.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// File is the full path of name in the directory.
func (d *Dir) File(name string) string { return filepath.Join(d.Path, name) }

// Written lists the files this Dir wrote.
func (d *Dir) Written() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.written))
	for n := range d.written {
		out = append(out, n)
	}
	return out
}

func tempName(name string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "." + name + ".tmp-" + hex.EncodeToString(b[:])
}
