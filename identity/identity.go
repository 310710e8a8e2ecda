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
	if n, err := strconv.Atoi(u); err == nil {
		if n < 0 {
			return nil, fmt.Errorf("user %q: negative uid", spec)
		}
		id.UID, id.GID = n, n
		if pw, err := user.LookupId(u); err == nil {
			id.GID, _ = strconv.Atoi(pw.Gid)
			id.Groups = groupsOf(pw)
		}
	} else {
		pw, err := user.Lookup(u)
		if err != nil {
			return nil, fmt.Errorf("unknown user %q: not in /etc/passwd; use a numeric UID[:GID] or add the user to the image", u)
		}
		id.UID, _ = strconv.Atoi(pw.Uid)
		id.GID, _ = strconv.Atoi(pw.Gid)
		id.Groups = groupsOf(pw)
	}
	if hasGroup {
		if n, err := strconv.Atoi(g); err == nil && n >= 0 {
			id.GID = n
		} else if gr, err := user.LookupGroup(g); err == nil {
			id.GID, _ = strconv.Atoi(gr.Gid)
		} else {
			return nil, fmt.Errorf("unknown group %q: not in /etc/group; use a numeric GID", g)
		}
	}
	return id, nil
}

func groupsOf(pw *user.User) []int {
	ids, err := pw.GroupIds()
	if err != nil {
		return nil
	}
	var out []int
	for _, s := range ids {
		if n, err := strconv.Atoi(s); err == nil {
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
