// Package identity is the user an app runs as (--user): who owns the
// secret files, whose permissions the file provider checks, and what the
// process drops to before the app starts.
package identity

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Identity is a numeric user, group and supplementary groups.
type Identity struct {
	UID, GID int
	Groups   []int  // supplementary groups; setgroups gets exactly these
	Spec     string // as the user wrote it
}

// Parse reads "UID[:GID]" or "NAME[:GROUP]". Names are looked up in
// /etc/passwd and /etc/group (the pure-Go os/user reads those files, so
// this works in a static binary in a scratch image when they exist). A
// numeric UID need not exist in /etc/passwd, as containers often run ids
// that no file names; its group then defaults to the same number, never to
// root's group 0, and it has no supplementary groups.
func Parse(spec string) (*Identity, error) {
	if spec == "" {
		return nil, fmt.Errorf("empty user")
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	id := &Identity{Spec: spec}
	if n, isNum, err := ParseID(u); isNum {
		if err != nil {
			return nil, fmt.Errorf("user %q: uid %v", spec, err)
		}
		id.UID, id.GID = n, n
		if pw, err := user.LookupId(u); err == nil {
			if id.GID, err = fileID(pw.Gid); err != nil {
				return nil, fmt.Errorf("user %q: /etc/passwd gives group %q: %v", spec, pw.Gid, err)
			}
			id.Groups = groupsOf(pw)
		}
	} else {
		pw, err := user.Lookup(u)
		if err != nil {
			return nil, fmt.Errorf("unknown user %q: not in /etc/passwd; use a numeric UID[:GID] or add the user to the image", u)
		}
		if id.UID, err = fileID(pw.Uid); err != nil {
			return nil, fmt.Errorf("user %q: /etc/passwd gives uid %q: %v", spec, pw.Uid, err)
		}
		if id.GID, err = fileID(pw.Gid); err != nil {
			return nil, fmt.Errorf("user %q: /etc/passwd gives group %q: %v", spec, pw.Gid, err)
		}
		id.Groups = groupsOf(pw)
	}
	if hasGroup {
		if n, isNum, err := ParseID(g); isNum {
			if err != nil {
				return nil, fmt.Errorf("user %q: gid %v", spec, err)
			}
			id.GID = n
		} else if gr, err := user.LookupGroup(g); err == nil {
			if id.GID, err = fileID(gr.Gid); err != nil {
				return nil, fmt.Errorf("user %q: /etc/group gives gid %q: %v", spec, gr.Gid, err)
			}
		} else {
			return nil, fmt.Errorf("unknown group %q: not in /etc/group; use a numeric GID", g)
		}
	}
	return id, nil
}

// MaxID is the largest uid or gid accepted: uid_t and gid_t are 32 bits,
// and (uid_t)-1 (4294967295) means "no change" to setresuid and chown, so it
// is never a user.
const MaxID = 1<<32 - 2

// ParseID reads a uid or gid exactly as written. isNum reports whether s
// looks like a number at all (digits, a sign, or a base prefix), so that
// "1e3" or "0x3e8" is an error rather than a user name to look up; err is
// set for anything but plain decimal without leading zeros in [0, MaxID].
// No value ever wraps: 4294967296 is refused, not read as 0 (root).
func ParseID(s string) (n int, isNum bool, err error) {
	if s == "" {
		return 0, false, nil
	}
	c := s[0]
	if !(c >= '0' && c <= '9') && !((c == '-' || c == '+') && len(s) > 1 && s[1] >= '0' && s[1] <= '9') {
		return 0, false, nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, true, fmt.Errorf("%q is not a decimal number (write it in plain digits)", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, true, fmt.Errorf("%q has a leading zero (octal or decimal?); write it without", s)
	}
	v, perr := strconv.ParseUint(s, 10, 64)
	if perr != nil || v > MaxID {
		return 0, true, fmt.Errorf("%s is out of range: ids are 0 to %d (%d is (uid_t)-1, which means no user)", s, MaxID, uint64(MaxID)+1)
	}
	return int(v), true, nil
}

// fileID reads a number from /etc/passwd or /etc/group with the same rules.
func fileID(s string) (int, error) {
	n, isNum, err := ParseID(s)
	if !isNum && err == nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n, err
}

func groupsOf(pw *user.User) []int {
	ids, err := pw.GroupIds()
	if err != nil {
		return nil
	}
	var out []int
	for _, s := range ids {
		if n, err := fileID(s); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func (id *Identity) String() string { return fmt.Sprintf("%d:%d", id.UID, id.GID) }

func (id *Identity) inGroup(gid int) bool {
	if gid == id.GID {
		return true
	}
	for _, g := range id.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// may reports whether the owner/group/other bits of fi grant id the
// permission bit perm (4 read, 2 write, 1 execute). Root gets no special
// treatment: the point is to never read on the app's behalf what the app
// could not read itself.
func (id *Identity) may(fi fs.FileInfo, perm fs.FileMode) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	m := fi.Mode().Perm()
	switch {
	case int(st.Uid) == id.UID:
		return m&(perm<<6) != 0
	case id.inGroup(int(st.Gid)):
		return m&(perm<<3) != 0
	default:
		return m&perm != 0
	}
}

// CheckReadable returns an error unless id could open path for reading
// itself: read permission on the file and search permission on every
// directory on the way to it, symlinks resolved.
func (id *Identity) CheckReadable(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(real)
	if err != nil {
		return err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return err
	}
	if !id.may(fi, 4) {
		return fmt.Errorf("user %s may not read %s (mode %s, owner %s)", id, path, fi.Mode().Perm(), owner(fi))
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if !id.may(di, 1) {
			return fmt.Errorf("user %s may not enter %s (mode %s, owner %s), so it could not read %s", id, dir, di.Mode().Perm(), owner(di), path)
		}
		if dir == "/" {
			return nil
		}
	}
}

func owner(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	return "?"
}

// CheckEnter returns an error unless id could enter the directory path
// itself: search permission on it and on every directory above it.
func (id *Identity) CheckEnter(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	for dir := abs; ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if !id.may(di, 1) {
			return fmt.Errorf("user %s may not enter %s (mode %s, owner %s)", id, dir, di.Mode().Perm(), owner(di))
		}
		if dir == "/" {
			return nil
		}
	}
}
