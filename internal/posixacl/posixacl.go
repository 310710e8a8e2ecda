// Package posixacl reads a file's POSIX access ACL (the
// system.posix_acl_access extended attribute) and says who it lets write.
// The mode bits alone cannot say it: an ACL entry names users and groups
// that the owner/group/other bits do not. No well-kept Go library reads
// it without cgo and libacl, and the format is small: a little-endian
// 32-bit version (2), then entries of a 16-bit tag, 16-bit permissions and
// a 32-bit id (linux/posix_acl_xattr.h).
package posixacl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Name is the extended attribute that holds the access ACL.
const Name = "system.posix_acl_access"

// Tags (linux/posix_acl.h).
const (
	UserObj  = 0x01
	User     = 0x02
	GroupObj = 0x04
	Group    = 0x08
	Mask     = 0x10
	Other    = 0x20
)

// Permission bits.
const (
	Read    = 4
	Write   = 2
	Execute = 1
)

const version = 2

// Entry is one ACL entry. ID is meaningful for User and Group only.
type Entry struct {
	Tag  uint16
	Perm uint16
	ID   uint32
}

// String is the entry as getfacl writes it ("user:1000:rw-").
func (e Entry) String() string {
	tag, id := "?", ""
	switch e.Tag {
	case UserObj:
		tag = "user"
	case User:
		tag, id = "user", fmt.Sprint(e.ID)
	case GroupObj:
		tag = "group"
	case Group:
		tag, id = "group", fmt.Sprint(e.ID)
	case Mask:
		tag = "mask"
	case Other:
		tag = "other"
	}
	rwx := []byte("---")
	for i, bit := range []uint16{Read, Write, Execute} {
		if e.Perm&bit != 0 {
			rwx[i] = "rwx"[i]
		}
	}
	return tag + ":" + id + ":" + string(rwx)
}

// ACL is a parsed access ACL; nil when the file has none.
type ACL []Entry

// Parse reads the attribute's value.
func Parse(b []byte) (ACL, error) {
	if len(b) < 4 || (len(b)-4)%8 != 0 {
		return nil, fmt.Errorf("ACL attribute of %d bytes is not a version header and whole entries", len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != version {
		return nil, fmt.Errorf("ACL attribute version %d, want %d", v, version)
	}
	var a ACL
	for b = b[4:]; len(b) > 0; b = b[8:] {
		a = append(a, Entry{
			Tag:  binary.LittleEndian.Uint16(b),
			Perm: binary.LittleEndian.Uint16(b[2:]),
			ID:   binary.LittleEndian.Uint32(b[4:]),
		})
	}
	return a, nil
}

// Get reads the access ACL of the open file fd: nil when it has none (no
// attribute, or a file system without ACLs).
func Get(fd int) (ACL, error) {
	return get(func(buf []byte) (int, error) { return unix.Fgetxattr(fd, Name, buf) })
}

// LGet is Get by path, not following a symlink at its end.
func LGet(path string) (ACL, error) {
	return get(func(buf []byte) (int, error) { return unix.Lgetxattr(path, Name, buf) })
}

func get(read func([]byte) (int, error)) (ACL, error) {
	buf := make([]byte, 256)
	for {
		n, err := read(buf)
		switch {
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.EOPNOTSUPP):
			return nil, nil
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, 2*len(buf))
			continue
		case err != nil:
			return nil, err
		}
		return Parse(buf[:n])
	}
}

// Writers returns the entries that let someone other than the file's owner
// and root write it, with the mask applied as the kernel applies it (a
// named user or any group entry writes only if the mask allows). The
// owner's own entry is left to the caller, who knows who the owner is.
func (a ACL) Writers() []Entry {
	mask := uint16(Read | Write | Execute)
	for _, e := range a {
		if e.Tag == Mask {
			mask = e.Perm
		}
	}
	var out []Entry
	for _, e := range a {
		switch {
		case e.Perm&Write == 0:
		case e.Tag == User && e.ID != 0, e.Tag == GroupObj, e.Tag == Group:
			if mask&Write != 0 {
				out = append(out, e)
			}
		case e.Tag == Other:
			out = append(out, e)
		}
	}
	return out
}

// Encode is the attribute's value for a, the inverse of Parse: for tests
// and tools that set an ACL without setfacl (unix.Setxattr with Name).
func (a ACL) Encode() []byte {
	b := binary.LittleEndian.AppendUint32(nil, version)
	for _, e := range a {
		id := e.ID
		if e.Tag != User && e.Tag != Group {
			id = ^uint32(0) // ACL_UNDEFINED_ID
		}
		b = binary.LittleEndian.AppendUint16(b, e.Tag)
		b = binary.LittleEndian.AppendUint16(b, e.Perm)
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	return b
}

// ParseEntry reads one entry as getfacl writes it: "user::rw-",
// "user:1000:rw-", "group::r--", "group:50:rwx", "mask::rw-", "other::r--".
func ParseEntry(s string) (Entry, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 || len(parts[2]) != 3 {
		return Entry{}, fmt.Errorf("ACL entry %q: want TAG:ID:rwx", s)
	}
	var e Entry
	named := parts[1] != ""
	switch {
	case parts[0] == "user" && named:
		e.Tag = User
	case parts[0] == "user":
		e.Tag = UserObj
	case parts[0] == "group" && named:
		e.Tag = Group
	case parts[0] == "group":
		e.Tag = GroupObj
	case parts[0] == "mask" && !named:
		e.Tag = Mask
	case parts[0] == "other" && !named:
		e.Tag = Other
	default:
		return Entry{}, fmt.Errorf("ACL entry %q: unknown tag %q", s, parts[0])
	}
	if named {
		id, err := strconv.ParseUint(parts[1], 10, 32)
		if err != nil {
			return Entry{}, fmt.Errorf("ACL entry %q: id: %v", s, err)
		}
		e.ID = uint32(id)
	}
	for i, bit := range []uint16{Read, Write, Execute} {
		switch parts[2][i] {
		case "rwx"[i]:
			e.Perm |= bit
		case '-':
		default:
			return Entry{}, fmt.Errorf("ACL entry %q: permissions %q: want rwx, - for a missing one", s, parts[2])
		}
	}
	return e, nil
}
