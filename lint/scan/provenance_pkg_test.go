package scan_test

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/secretbroker/secretbroker/lint/internal/testimage"
	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
	"github.com/secretbroker/secretbroker/lint/rules"
	"github.com/secretbroker/secretbroker/lint/scan"
)

// classes maps each finding's path to "class note".
func classes(res *scan.Result) map[string]string {
	out := map[string]string{}
	for _, f := range res.Findings {
		out[f.Path] = f.Class + " " + f.Note
		for _, l := range f.Locations {
			if i := strings.LastIndexByte(l, ':'); i > 0 {
				l = l[:i] // "path:line"
			}
			out[l] = f.Class + " " + f.Note
		}
	}
	return out
}

// matchClass: got is "class note", want "class [part of the note]".
func matchClass(got, want string) bool {
	cls, note, _ := strings.Cut(want, " ")
	return strings.HasPrefix(got, cls+" ") && strings.Contains(got, note)
}

func wantClasses(t *testing.T, res *scan.Result, want map[string]string) {
	t.Helper()
	got := classes(res)
	for p, c := range want {
		if !matchClass(got[p], c) {
			t.Errorf("%s: class %q, want %q (all: %v)", p, got[p], c, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("findings %v, want exactly %v", got, want)
	}
}

// apk's database names each file's SHA-1 ("Q1" + base64): a file that
// matches is shipped, a modified one or one no package lists stays secret.
func TestProvenanceAPK(t *testing.T) {
	shipped := "self-test key:\n" + testsecret.RSAKeyPEM()
	orig := "fixture:\n" + testsecret.ECKeyPEM()
	q1 := func(s string) string { h := sha1.Sum([]byte(s)); return "Q1" + base64.StdEncoding.EncodeToString(h[:]) }
	q2 := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return "Q2" + base64.StdEncoding.EncodeToString(h[:])
	}
	db := "C:Q1abc=\nP:musl\nV:1.2.4-r2\nF:lib\nR:ld-musl-x86_64.so.1\nZ:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n" +
		"C:Q1def=\nP:libselftest\nV:1.0-r0\nF:usr/lib/selftest\nR:key.pem\na:0:0:644\nZ:" + q1(shipped) +
		"\nR:modified.pem\nZ:" + q1(orig) + "\nF:usr/share/selftest\nR:v3.pem\nZ:" + q2(shipped) + "\n\n"
	res := scanImage(t, v1.Config{},
		[]testimage.File{
			{Name: "usr/lib/selftest/key.pem", Body: shipped},
			{Name: "usr/lib/selftest/modified.pem", Body: orig + "x"},
			{Name: "usr/share/selftest/v3.pem", Body: shipped + "\n"}, // same value, other file
			{Name: "usr/lib/selftest/planted.pem", Body: testsecret.ECKeyPEM()},
			{Name: "lib/apk/db/installed", Body: db},
		})
	wantClasses(t, res, map[string]string{
		"usr/lib/selftest/key.pem":      "shipped shipped by apk package libselftest, unmodified",
		"usr/lib/selftest/modified.pem": "secret",
		"usr/share/selftest/v3.pem":     "secret", // its Q2 is of other content
		"usr/lib/selftest/planted.pem":  "secret",
	})
}

// rpm's database, made by rpm itself: a package built with rpmbuild at
// test time is installed into a fresh root with a SQLite database (and
// its write-ahead log, as rpm leaves it).
func TestProvenanceRPM(t *testing.T) {
	for _, c := range []string{"rpm", "rpmbuild"} {
		if _, err := exec.LookPath(c); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (scripts/test.sh installs the rpm package)", c)
			}
			t.Skipf("%s not installed", c)
		}
	}
	dir := t.TempDir()
	key := "self-test key:\n" + testsecret.RSAKeyPEM()
	for _, d := range []string{"SOURCES", "SPECS", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "SOURCES/key.pem"), []byte(key), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := `Name: selftest
Version: 1.0
Release: 1
Summary: lint provenance test
License: MIT
BuildArch: noarch
%description
lint provenance test
%install
mkdir -p %{buildroot}/usr/share/selftest
cp %{_sourcedir}/key.pem %{buildroot}/usr/share/selftest/key.pem
cp %{_sourcedir}/key.pem %{buildroot}/usr/share/selftest/modified.pem
%files
/usr/share/selftest/key.pem
/usr/share/selftest/modified.pem
`
	if err := os.WriteFile(filepath.Join(dir, "SPECS/t.spec"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	for _, args := range [][]string{
		{"rpmbuild", "-bb", "--define", "_topdir " + dir, filepath.Join(dir, "SPECS/t.spec")},
		{"rpm", "--root", root, "--dbpath", "/var/lib/rpm", "--initdb"},
		{"sh", "-c", `rpm --root "$1" --dbpath /var/lib/rpm -i --nodeps "$2"/RPMS/noarch/*.rpm`, "sh", root, dir},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args[:2], err, out)
		}
	}
	files := []testimage.File{
		{Name: "usr/share/selftest/key.pem", Body: key},
		{Name: "usr/share/selftest/modified.pem", Body: key + "x"},
		{Name: "usr/share/selftest/planted.pem", Body: testsecret.ECKeyPEM()},
	}
	dbs, _ := filepath.Glob(filepath.Join(root, "var/lib/rpm/rpmdb.sqlite*"))
	for _, p := range dbs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, testimage.File{Name: "var/lib/rpm/" + filepath.Base(p), Body: string(b)})
	}
	res := scanImage(t, v1.Config{}, files)
	wantClasses(t, res, map[string]string{
		"usr/share/selftest/key.pem":      "shipped shipped by rpm package selftest, unmodified",
		"usr/share/selftest/modified.pem": "secret",
		"usr/share/selftest/planted.pem":  "secret",
	})
}

func scanDir(t *testing.T, dir string) *scan.Result {
	t.Helper()
	e, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	s := scan.New(e)
	s.FS(context.Background(), "fs:"+dir, dir, nil)
	res := s.Result()
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	return res
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for n, body := range files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A data file of a Go package directory that only its _test.go files name
// is test data (the Go toolchain's crypto/x509/platform_root_key.pem); a
// file added to the same tree, or one the package itself reads, stays
// secret.
func TestGoTestData(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"go/VERSION":                               "go1.26.8\n",
		"go/src/crypto/x509/platform_test.go":      "package x509\n\nconst rootKeyPath = \"platform_root_key.pem\"\n",
		"go/src/crypto/x509/x509.go":               "package x509\n",
		"go/src/crypto/x509/platform_root_key.pem": testsecret.ECKeyPEM(),
		"go/src/crypto/x509/planted_key.pem":       testsecret.ECKeyPEM(),
		"go/src/net/http/server.go":                "package http\n\nvar keyFile = filepath.Join(dir, \"server_key.pem\")\n",
		"go/src/net/http/server_test.go":           "package http\n\nvar k = \"server_key.pem\"\n",
		"go/src/net/http/server_key.pem":           testsecret.ECKeyPEM(),
	})
	wantClasses(t, scanDir(t, dir), map[string]string{
		"go/src/crypto/x509/platform_root_key.pem": "fixture test data named only by go/src/crypto/x509/platform_test.go",
		"go/src/crypto/x509/planted_key.pem":       "secret",
		"go/src/net/http/server_key.pem":           "secret",
	})
}

// A value in a compiled Python file takes the class it has in its source:
// real .pyc files compiled by python3 at test time.
func TestPycJudgedBySource(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 not installed (scripts/test.sh installs it)")
		}
		t.Skip("no python3")
	}
	dir := t.TempDir()
	site := "usr/lib/python3/dist-packages/"
	key := testsecret.RSAKeyPEM()
	src := "KEY = '''" + key + "'''\n"
	s256 := sha256.Sum256([]byte(src))
	writeFiles(t, dir, map[string]string{
		site + "pkg/keys.py":              src,
		site + "pkg-1.0.dist-info/RECORD": "pkg/keys.py,sha256=" + base64.RawURLEncoding.EncodeToString(s256[:]) + "," + "1\n",
		// compiled, then its source edited: the .pyc's value is in no source
		site + "pkg/stale.py": "KEY = '''" + testsecret.RSAKeyPEM() + "'''\n",
		"opt/app/main.py":     "print('hello')\n",
	})
	compile := func(rel string) {
		p := filepath.Join(dir, rel)
		if out, err := exec.Command(py, "-c", "import py_compile,sys; py_compile.compile(sys.argv[1], doraise=True)", p).CombinedOutput(); err != nil {
			t.Fatalf("py_compile %s: %v\n%s", rel, err, out)
		}
	}
	compile(site + "pkg/keys.py")
	compile(site + "pkg/stale.py")
	writeFiles(t, dir, map[string]string{site + "pkg/stale.py": "KEY = None\n"})
	// a planted .pyc next to a harmless source
	compile("opt/app/main.py")
	pyc, _ := filepath.Glob(filepath.Join(dir, "opt/app/__pycache__/main.*.pyc"))
	if len(pyc) != 1 {
		t.Fatal("no compiled main")
	}
	if err := os.WriteFile(pyc[0], []byte("\x00\x00\x00\x00"+key), 0o644); err != nil {
		t.Fatal(err)
	}
	res := scanDir(t, dir)
	got := classes(res)
	tag := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(pyc[0]), "main."), ".pyc")
	want := map[string]string{
		site + "pkg/keys.py":                           "shipped shipped by pip package pkg",
		site + "pkg/__pycache__/keys." + tag + ".pyc":  "shipped",
		site + "pkg/__pycache__/stale." + tag + ".pyc": "secret",
		"opt/app/__pycache__/main." + tag + ".pyc":     "secret",
	}
	for p, c := range want {
		if !matchClass(got[p], c) {
			t.Errorf("%s: %q, want %q (all: %v)", p, got[p], c, got)
		}
	}
}
