package posixacl

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func acl(t *testing.T, entries ...string) ACL {
	t.Helper()
	var a ACL
	for _, s := range entries {
		e, err := ParseEntry(s)
		if err != nil {
			t.Fatal(err)
		}
		a = append(a, e)
	}
	return a
}

func TestWriters(t *testing.T) {
	base := []string{"user::rw-", "group::r--", "other::r--"}
	tests := []struct {
		name  string
		extra []string
		want  []string // the writers, as getfacl writes them
	}{
		{"mode bits only", nil, nil},
		{"named user may write", []string{"user:1000:rw-", "mask::rw-"}, []string{"user:1000:rw-"}},
		{"named user masked", []string{"user:1000:rw-", "mask::r--"}, nil},
		{"root may write", []string{"user:0:rw-", "mask::rw-"}, nil},
		{"named group may write", []string{"group:50:rwx", "mask::rwx"}, []string{"group:50:rwx"}},
		{"named root group may write", []string{"group:0:rw-", "mask::rw-"}, []string{"group:0:rw-"}},
		{"no mask", []string{"user:1000:rw-"}, []string{"user:1000:rw-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := acl(t, append(slices.Clone(base), tt.extra...)...)
			var got []string
			for _, e := range a.Writers() {
				got = append(got, e.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Writers = %v, want %v", got, tt.want)
			}
			back, err := Parse(a.Encode())
			if err != nil || len(back) != len(a) {
				t.Fatalf("Parse(Encode) = %v, %v", back, err)
			}
			for i := range a {
				if back[i].String() != a[i].String() {
					t.Errorf("entry %d: %s after a round trip, want %s", i, back[i], a[i])
				}
			}
		})
	}
	// group:: and other:: with w are writers too.
	for _, s := range []string{"group::rw-", "other::-w-"} {
		if w := acl(t, s).Writers(); len(w) != 1 {
			t.Errorf("%s: Writers = %v", s, w)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, b := range [][]byte{nil, {2, 0, 0}, {1, 0, 0, 0}, {2, 0, 0, 0, 1}} {
		if _, err := Parse(b); err == nil {
			t.Errorf("Parse(%v) accepted", b)
		}
	}
	for _, s := range []string{"user:rw-", "user:x:rw-", "mask:5:rw-", "bogus::rw-", "user::rwz", "user::rw"} {
		if _, err := ParseEntry(s); err == nil {
			t.Errorf("ParseEntry(%q) accepted", s)
		}
	}
}

// TestGetReal sets an ACL on a real file and reads it back through the
// kernel, which also checks that Encode's format is the kernel's.
func TestGetReal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, nil, 0o644)
	if a, err := LGet(p); err != nil || a != nil {
		t.Fatalf("no ACL yet: %v, %v", a, err)
	}
	want := acl(t, "user::rw-", "user:1000:rw-", "group::r--", "mask::rw-", "other::r--")
	if err := unix.Setxattr(p, Name, want.Encode(), 0); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			t.Skip("no POSIX ACLs on this file system")
		}
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Stat(p, &st)
	if st.Mode&0o777 != 0o664 {
		t.Errorf("mode %o: the kernel should show the mask as the group bits", st.Mode&0o777)
	}
	f, _ := os.Open(p)
	defer f.Close()
	got, err := Get(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, e := range got {
		s = append(s, e.String())
	}
	if strings.Join(s, ",") != "user::rw-,user:1000:rw-,group::r--,mask::rw-,other::r--" {
		t.Errorf("read back %v", s)
	}
}
