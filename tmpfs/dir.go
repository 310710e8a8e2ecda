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
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/secretbroker/secretbroker/identity"
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
	created := false
	fi, err := os.Lstat(path)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return nil, &Error{Path: path, Msg: "is a symlink; give the real directory, so nobody can redirect where secrets go"}
	case err == nil && !fi.IsDir():
		return nil, &Error{Path: path, Msg: "exists and is not a directory"}
	case errors.Is(err, fs.ErrNotExist):
		switch {
		case o.Mount:
			if err := os.MkdirAll(path, 0o700); err != nil {
				return nil, &Error{Path: path, Msg: "cannot create it to mount a tmpfs", Err: err}
			}
			created = true
		case parentIsMemory(path) || o.AllowDisk:
			if err := os.Mkdir(path, 0o700); err != nil {
				if o.Fallback {
					return openFallback(path, o, log)
				}
				return nil, &Error{Path: path, Msg: "does not exist and cannot be created", Err: err}
			}
			created = true
		case o.Fallback:
			return openFallback(path, o, log)
		default:
			return nil, &Error{Path: path, Msg: "does not exist; give the container a tmpfs there (docker run --tmpfs " + path + ", a compose tmpfs volume, or an emptyDir with medium: Memory), or pass --mount"}
		}
	case err != nil:
		return nil, &Error{Path: path, Msg: "cannot inspect it", Err: err}
	}
	d, err := prepare(path, o, created, log)
	if err != nil && created {
		os.Remove(path)
	}
	return d, err
}

func parentIsMemory(path string) bool {
	ok, err := IsMemory(filepath.Dir(path))
	return err == nil && ok
}

func prepare(path string, o Options, created bool, log *slog.Logger) (*Dir, error) {
	mem, err := IsMemory(path)
	if err != nil {
		return nil, &Error{Path: path, Msg: "cannot check its file system", Err: err}
	}
	mounted := false
	if !mem && o.Mount {
		opts := "mode=0700,size=16m"
		if o.Owner != nil {
			opts += ",uid=" + strconv.Itoa(o.Owner.UID) + ",gid=" + strconv.Itoa(o.Owner.GID)
		}
		if err := unix.Mount("tmpfs", path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
			return nil, &Error{Path: path, Msg: "cannot mount a tmpfs (--mount needs CAP_SYS_ADMIN; in a container give it a tmpfs instead)", Err: err}
		}
		mem, mounted = true, true
		log.Info("mounted a tmpfs for secrets", "dir", path)
	}
	if !mem {
		if !o.AllowDisk {
			return nil, &Error{Path: path, Msg: "is on a disk-backed file system, so secrets would reach the disk; use a tmpfs (docker run --tmpfs " + path + ", or --mount), or pass --allow-disk to accept it"}
		}
		log.Warn("secrets directory is disk-backed; secrets will reach the disk (--allow-disk)", "dir", path)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &Error{Path: path, Msg: "cannot open it", Err: err}
	}
	// Where the descriptor really is: a symlink higher up the path must not
	// let a policy's dirs: judge one place while files go to another.
	if real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil && filepath.IsAbs(real) {
		path = real
	} else if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	d := &Dir{Path: path, Memory: mem, Mounted: mounted, fd: fd, owner: o.Owner, written: map[string]bool{}, inodes: map[string]fileID{}}
	if err := d.setOwner(created); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
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
		// Still the directory we made (0700, ours)? In a parent that others
		// may write, it could have been swapped between mkdir and open.
		if !d.Mounted && (int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0) {
			return &Error{Path: d.Path, Msg: fmt.Sprintf("changed between creating and opening it (now uid %d, mode %04o); refusing it", st.Uid, st.Mode&0o7777)}
		}
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

func (d *Dir) empty() bool {
	f, err := os.Open(d.Path)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
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
		created, err := ensurePrivate(c, o.Owner)
		if err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		if mem, err := IsMemory(c); err != nil || !mem {
			reasons = append(reasons, c+": not memory-backed")
			continue
		}
		log.Warn("secrets directory is missing; using a fallback (set dir: or --dir, or give the container a tmpfs there)", "wanted", wanted, "using", c)
		o.Fallback = false
		return prepare(c, o, created, log)
	}
	return nil, &Error{Path: wanted, Msg: "does not exist, and no fallback was usable: " + joinReasons(reasons)}
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

// ensurePrivate creates dir 0700, or accepts an existing one only if it is
// ours: not a symlink, a directory, owned by the effective user (or by the
// --user it was handed to earlier), mode 0700.
func ensurePrivate(dir string, owner *identity.Identity) (bool, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return false, fmt.Errorf("%s: cannot create: %v", dir, err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %v", dir, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return false, fmt.Errorf("%s: is a symlink; refusing it", dir)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%s: not a directory", dir)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != os.Geteuid() && (owner == nil || int(st.Uid) != owner.UID) {
		return false, fmt.Errorf("%s: owned by uid %d, not by us (uid %d); someone else made it, refusing it", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm() != 0o700 {
		return false, fmt.Errorf("%s: mode %s, want 0700; refusing it", dir, fi.Mode().Perm())
	}
	return false, nil
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
