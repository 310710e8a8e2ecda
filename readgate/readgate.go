// Package readgate is the one gate every file read on the workload's behalf
// passes: a file:// secret, a template source, a Vault token, role-id,
// secret-id or JWT file, a 1Password token file. The declaration names
// those files and the declaration is not trusted, so inject running as root
// must not read through them what the app could not read itself, what the
// guardrail forbids, or what the kernel makes of its own state (/proc,
// /sys: the credentials inject consumed would come back as a file).
//
// Read resolves every symlink of the path first (the real path is the
// file's identity: what the guardrail and policy match), refuses /proc
// and /sys by that path, then opens the real path with openat2
// RESOLVE_NO_SYMLINKS (O_NOFOLLOW on kernels without openat2) and
// O_NONBLOCK, so a path swapped for a symlink between the two steps is
// refused and a FIFO cannot block, and checks on the open descriptor that
// it is a regular file on neither procfs nor sysfs (statfs magic). The
// read is capped.
package readgate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/secretbroker/secretbroker/identity"
)

// DefaultMax caps a read when Options.Max is 0: a secrets file, template
// or token is small, and a mistaken path to a disk image must not fill
// memory.
const DefaultMax = 16 << 20

// Options says whose behalf a read is on.
type Options struct {
	// User is --user: a file that user could not read itself (mode bits
	// of the file and search bits of every directory on the way, after
	// symlinks are resolved) is refused. nil: no --user.
	User *identity.Identity
	// Guard, when set, is asked about the file's identity, "file://" and
	// its absolute real path, before the file is opened; an error refuses.
	Guard func(id string) error
	// Max is the most bytes read; 0 means DefaultMax.
	Max int64
	// What names the file in messages ("template source", "token_file").
	What string
}

// Kind says why a read was refused, for callers that map it to their own
// error classes.
type Kind int

const (
	KindOther    Kind = iota
	KindNotFound      // no such file
	KindDenied        // the guardrail, the policy or the user's permissions
	KindInvalid       // not a regular file, too large, /proc or /sys
)

// Error is a refused or failed read. Its message names the path, never
// the file's contents.
type Error struct {
	Path string
	Kind Kind
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

// Identity is what a policy matches for a local file: "file://" and the
// absolute path with every symlink resolved. A file that does not exist
// yet has its nearest existing ancestor resolved and the rest appended.
func Identity(path string) (string, error) {
	real, err := RealPath(path)
	if err != nil {
		return "", err
	}
	return "file://" + real, nil
}

// RealPath is path made absolute with every symlink resolved; for a path
// that does not exist, its nearest existing ancestor is resolved and the
// missing rest appended (cleaned).
func RealPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var rest []string
	for p := abs; ; p = filepath.Dir(p) {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			for i := len(rest) - 1; i >= 0; i-- {
				r = filepath.Join(r, rest[i])
			}
			return r, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || p == "/" {
			return "", err
		}
		rest = append(rest, filepath.Base(p))
	}
}

// kernelFS reports whether path is under /proc or /sys.
func kernelFS(path string) bool {
	for _, root := range []string{"/proc", "/sys"} {
		if path == root || strings.HasPrefix(path, root+"/") {
			return true
		}
	}
	return false
}

// ReadFile reads path through the gate.
func ReadFile(path string, o Options) ([]byte, error) {
	b, _, err := ReadFileIdentity(path, o)
	return b, err
}

// ReadFileIdentity reads path through the gate and returns the identity it
// read ("file://" and the real path), for checks made later.
func ReadFileIdentity(path string, o Options) ([]byte, string, error) {
	b, real, err := read(path, o)
	if err != nil {
		return nil, "", err
	}
	return b, "file://" + real, nil
}

func read(path string, o Options) ([]byte, string, error) {
	what := o.What
	if what == "" {
		what = "file"
	}
	fail := func(k Kind, msg string, err error) ([]byte, string, error) {
		return nil, "", &Error{Path: path, Kind: k, Msg: msg, Err: err}
	}
	real, err := resolve(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(KindNotFound, "no such file", nil)
		}
		if errors.Is(err, fs.ErrPermission) {
			return fail(KindDenied, "permission denied", nil)
		}
		return fail(KindOther, "cannot resolve", unwrapPath(err))
	}
	if kernelFS(real) {
		return fail(KindInvalid, fmt.Sprintf("a %s is never read from /proc or /sys (resolves to %s)", what, real), nil)
	}
	// Refuse what is not a regular file before opening it: opening a
	// device can have effects of its own. The descriptor is checked again.
	var lst unix.Stat_t
	if err := unix.Lstat(real, &lst); err == nil && lst.Mode&unix.S_IFMT != unix.S_IFREG {
		return fail(KindInvalid, "not a regular file ("+typeName(lst.Mode)+")", nil)
	}
	if o.Guard != nil {
		if err := o.Guard("file://" + real); err != nil {
			return fail(KindDenied, "refused", err)
		}
	}
	if o.User != nil {
		if err := o.User.CheckReadable(real); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fail(KindNotFound, "no such file", nil)
			}
			return fail(KindDenied, err.Error()+"; make it readable by that user, or drop --user", nil)
		}
	}
	fd, err := OpenNoSymlinks(real, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fail(KindNotFound, "no such file", nil)
		case errors.Is(err, fs.ErrPermission):
			return fail(KindDenied, "permission denied", nil)
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
			return fail(KindDenied, "a symlink appeared on the way after it was resolved; refused", nil)
		}
		return fail(KindOther, "cannot open", unwrapPath(err))
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail(KindOther, "cannot stat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fail(KindInvalid, "not a regular file ("+typeName(st.Mode)+")", nil)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return fail(KindOther, "cannot statfs", err)
	}
	if sfs.Type == unix.PROC_SUPER_MAGIC || sfs.Type == unix.SYSFS_MAGIC {
		return fail(KindInvalid, fmt.Sprintf("a %s is never read from procfs or sysfs", what), nil)
	}
	max := o.Max
	if max <= 0 {
		max = DefaultMax
	}
	if st.Size > max {
		return fail(KindInvalid, fmt.Sprintf("larger than the %d-byte cap for a %s", max, what), nil)
	}
	b, err := readAll(fd, st.Size, max)
	if err != nil {
		return fail(KindOther, "cannot read", err)
	}
	if int64(len(b)) > max {
		clear(b)
		return fail(KindInvalid, fmt.Sprintf("larger than the %d-byte cap for a %s", max, what), nil)
	}
	return b, real, nil
}

// resolve is path made absolute with every symlink resolved. A path with
// no symlink on the way is its own real path (made absolute and cleaned),
// which one openat2 O_PATH with RESOLVE_NO_SYMLINKS proves without opening
// the file (O_PATH has no effect on a device) and without the per-component
// lstat and allocations of filepath.EvalSymlinks; any other answer (a
// symlink, no such file, no openat2) takes EvalSymlinks, which also says
// why it failed. A broker re-reads every file secret each cycle: this is
// most of its per-file cost.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	if fd, err := unix.Openat2(unix.AT_FDCWD, abs, &how); err == nil {
		unix.Close(fd)
		return abs, nil
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	return filepath.Abs(real)
}

// readAll reads the open file whose fstat size is size, at most max bytes
// (max+1 are asked for, so a file that grew past the cap is seen). One
// buffer is allocated when the size is right.
func readAll(fd int, size, max int64) ([]byte, error) {
	n := min(size, max) + 1
	if n < 512 {
		n = 512 // a file that reports no size (it grows as it is read)
	}
	b := make([]byte, 0, n)
	for int64(len(b)) <= max {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
		m, err := unix.Read(fd, b[len(b):min(int64(cap(b)), max+1)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			clear(b)
			return nil, err
		}
		if m == 0 {
			break
		}
		b = b[:len(b)+m]
	}
	return b, nil
}

// OpenNoSymlinks opens an absolute, already resolved path with flags
// (close-on-exec added), refusing a symlink in any component: a path
// resolved first and opened second cannot be redirected in between. tmpfs
// opens the secrets directory's parent with it.
func OpenNoSymlinks(path string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &how)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		// No openat2 (old kernel, seccomp profile): refuse a symlink at
		// the last component, then compare what was opened with path.
		fd, err = unix.Open(path, flags|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err == nil {
			got, lerr := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
			if lerr == nil && got != path {
				unix.Close(fd)
				return -1, unix.ELOOP
			}
		}
	}
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// typeName says what a file that is not regular is, from its st_mode.
func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symlink"
	}
	return "an irregular file"
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
