package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/secretbroker/secretbroker/internal/posixacl"
	"github.com/secretbroker/secretbroker/readgate"
)

// loadGuardrail reads the guardrail at path, if there is one. The path is
// resolved one component at a time (securePath), so that every directory
// passed through and every symlink followed, on whatever path it is
// reached, is judged; the file is then opened with no symlink allowed on
// the resolved path, and judged on its descriptor: a regular file owned by
// root, neither its mode nor its ACL letting anyone else write it.
func loadGuardrail(path string) (*Policy, string, error) {
	real, err := securePath(path)
	if errors.Is(err, errNoGuardrail) {
		// No guardrail. (Whoever could create one could only narrow.)
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s: %v", path, err)
	}
	shown := path
	if real != path {
		shown = fmt.Sprintf("%s (a symlink to %s)", path, real)
	}
	fd, err := readgate.OpenNoSymlinks(real, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", shown, err)
	}
	f := os.NewFile(uintptr(fd), real)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, "", fmt.Errorf("%s: %w", shown, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		var t fs.FileMode
		if fi != nil {
			t = fi.Mode().Type()
		}
		return nil, "", fmt.Errorf("%s is not a regular file (%s)", shown, t)
	}
	if st.Uid != 0 {
		return nil, fmt.Sprintf("%s is not owned by root, so it is not a guardrail; ignored", shown), nil
	}
	// The ACL first: an entry that grants write also sets the group bits
	// (the mask), and naming the entry says what to remove.
	acl, err := posixacl.Get(fd)
	if err != nil {
		return nil, "", fmt.Errorf("%s: cannot read its ACL: %w", shown, err)
	}
	if w := acl.Writers(); len(w) > 0 {
		return nil, "", fmt.Errorf("%s: its ACL entry %s lets someone other than root write it; remove it (setfacl -x)", shown, w[0])
	}
	if st.Mode&0o022 != 0 {
		return nil, "", fmt.Errorf("%s is writable by group or others (mode %s); make it 0644 or stricter", shown, fs.FileMode(st.Mode&0o777))
	}
	b, err := readCappedFile(f)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", shown, err)
	}
	p, err := Parse(path, b)
	return p, "", err
}

var errNoGuardrail = errors.New("no guardrail")

// maxHops bounds the symlinks followed, as the kernel's ELOOP does.
const maxHops = 40

// securePath resolves path as the kernel would, one component at a time,
// and judges each directory it passes through (judgeDir) before it looks
// inside: a symlink on the way is followed only if it sits in a directory
// that nobody but root can change, and its target is judged the same way,
// so no component of any path leading to the file is out of root's hands.
// It returns the resolved path, or errNoGuardrail when a component of
// path as written is missing. A symlink on the way that leads nowhere is
// an error instead: root put it there meaning a guardrail.
func securePath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	dir, rest, hops := "/", strings.Split(abs, "/"), 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			dir = filepath.Dir(dir)
			continue
		}
		next := filepath.Join(dir, name)
		var st unix.Stat_t
		if err := unix.Lstat(next, &st); err != nil {
			if errors.Is(err, unix.ENOENT) && hops == 0 {
				return "", errNoGuardrail
			}
			if errors.Is(err, unix.ENOENT) {
				return "", fmt.Errorf("a symlink on the way leads to %s, which does not exist", next)
			}
			return "", fmt.Errorf("%s: %w", next, err)
		}
		if err := judgeDir(dir, &st); err != nil {
			return "", err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			dir = next
			continue
		}
		if hops++; hops > maxHops {
			return "", fmt.Errorf("%s: too many symlinks", path)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			dir = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return dir, nil
}

// judgeDir checks that dir is owned by root and that neither its mode nor
// its ACL lets anyone else write it; a sticky directory (/tmp) writable by
// others is accepted when child, its entry on the path, is root's, since
// then nobody else can rename or remove that entry.
func judgeDir(dir string, child *unix.Stat_t) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	sticky := st.Mode&unix.S_ISVTX != 0 && child.Uid == 0
	if st.Uid != 0 {
		return fmt.Errorf("its directory %s is owned by uid %d, not root, so that user could replace it", dir, st.Uid)
	}
	acl, err := posixacl.LGet(dir)
	if err != nil {
		return fmt.Errorf("its directory %s: cannot read its ACL: %w", dir, err)
	}
	if w := acl.Writers(); len(w) > 0 && !sticky {
		return fmt.Errorf("its directory %s has the ACL entry %s, which lets someone other than root write it, so they could replace it; remove it (setfacl -x)", dir, w[0])
	}
	if st.Mode&0o022 != 0 && !sticky {
		return fmt.Errorf("its directory %s is writable by group or others (mode %s), so they could replace it", dir, fs.FileMode(st.Mode&0o777))
	}
	return nil
}
