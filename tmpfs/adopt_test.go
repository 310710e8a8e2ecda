package tmpfs

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestDigestAdoptRemoveStaleTemps(t *testing.T) {
	dir := shmDir(t)
	os.WriteFile(filepath.Join(dir, "old"), []byte("left-by-an-earlier-run"), 0o400)
	os.WriteFile(filepath.Join(dir, "elsewhere"), []byte("x"), 0o400)
	os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "link"))
	os.WriteFile(filepath.Join(dir, ".old.tmp-0123456789abcdef"), []byte("partial"), 0o600)
	os.WriteFile(filepath.Join(dir, ".keep"), []byte("not ours"), 0o600)
	d, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	sum, ok, err := d.Digest("old")
	if err != nil || !ok || sum != sha256.Sum256([]byte("left-by-an-earlier-run")) {
		t.Fatalf("Digest(old) = %x %v %v", sum, ok, err)
	}
	if _, ok, err := d.Digest("link"); ok || err != nil {
		t.Fatalf("Digest followed a symlink: ok=%v err=%v", ok, err)
	}
	if _, ok, err := d.Digest("missing"); ok || err != nil {
		t.Fatalf("Digest(missing) = %v %v", ok, err)
	}
	if n := d.RemoveStaleTemps(); n != 1 {
		t.Fatalf("RemoveStaleTemps = %d, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(dir, ".keep")); err != nil {
		t.Fatal("a hidden file that is not a temporary was removed")
	}
	d.Adopt("old")
	if !slices.Contains(d.Written(), "old") {
		t.Fatal("an adopted file is not among Written")
	}
	if err := d.Wipe(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "old")); !os.IsNotExist(err) {
		t.Fatal("Wipe left an adopted file")
	}
}
