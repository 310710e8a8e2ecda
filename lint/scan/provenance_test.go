package scan_test

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/secretbroker/secretbroker/lint/internal/testimage"
	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
)

// A file whose digest matches its package's manifest is class shipped; a
// modified one, or one no package owns, stays class secret.
func TestProvenanceShipped(t *testing.T) {
	lib := "self-test key:\n" + testsecret.RSAKeyPEM()
	sum := md5.Sum([]byte(lib))
	py := "fixture:\n" + testsecret.RSAKeyPEM()
	s256 := sha256.Sum256([]byte(py))
	md5sums := hex.EncodeToString(sum[:]) + "  usr/lib/libselftest.so.1\n" + hex.EncodeToString(sum[:]) + "  usr/lib/libmodified.so.1\n"
	record := "pkg/tests/key.txt,sha256=" + base64.RawURLEncoding.EncodeToString(s256[:]) + ",123\n"
	res := scanImage(t, v1.Config{},
		[]testimage.File{
			{Name: "usr/lib/libselftest.so.1", Body: lib},
			{Name: "usr/lib/libmodified.so.1", Body: lib + "x"},
			{Name: "usr/lib/python3/dist-packages/pkg/tests/key.txt", Body: py},
			{Name: "opt/app/key.pem", Body: testsecret.ECKeyPEM()},
		},
		[]testimage.File{
			{Name: "var/lib/dpkg/info/libselftest1:amd64.md5sums", Body: md5sums},
			{Name: "usr/lib/python3/dist-packages/pkg-1.0.dist-info/RECORD", Body: record},
		})
	classes := map[string]string{}
	for _, f := range res.Findings {
		classes[f.Path] = f.Class + " " + f.Note
	}
	want := map[string]string{
		"usr/lib/libselftest.so.1":                        "shipped",
		"usr/lib/libmodified.so.1":                        "secret",
		"usr/lib/python3/dist-packages/pkg/tests/key.txt": "shipped",
		"opt/app/key.pem":                                 "secret",
	}
	for p, c := range want {
		if !strings.HasPrefix(classes[p], c) {
			t.Errorf("%s: class %q, want %s (all: %v)", p, classes[p], c, classes)
		}
	}
	if !strings.Contains(classes["usr/lib/libselftest.so.1"], "shipped by dpkg package libselftest1, unmodified") {
		t.Errorf("note: %q", classes["usr/lib/libselftest.so.1"])
	}
}
