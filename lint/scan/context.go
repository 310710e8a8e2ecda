package scan

import (
	"bytes"
	"path"
	"strings"

	"github.com/secretbroker/secretbroker/lint/walk"
)

// Some files are judged by another file that gives them their context:
//
//   - A compiled Python file (__pycache__/NAME.cpython-311.pyc, NAME.pyc)
//     holds the string constants of its source NAME.py without the text
//     around them. A value found in it takes the class the same value has in
//     the source (shipped, fixture, secret); when the source holds the value
//     but no rule reports it there (judged by its context, e.g. an example
//     in a docstring), the compiled copy is no finding either. A value the
//     source does not hold (a modified or planted .pyc, or no source at all)
//     stays fully reported.
//   - A data file in a Go package directory that is named only by the
//     package's _test.go files, and by none of its other .go files, is test
//     data (the Go toolchain's crypto/x509/platform_root_key.pem, read by
//     platform_test.go): class fixture. A file no test names (one added to
//     the tree) stays fully reported.
//
// contextFile is what such a judgement reads: a file of the same target by
// its path, and the names in a directory.
type contextFiles interface {
	read(p string) ([]byte, bool)
	list(dir string) []string
}

// pycSource names the source of a compiled Python file: "a/__pycache__/
// m.cpython-311.pyc" and "a/m.pyc" are "a/m.py".
func pycSource(p string) (string, bool) {
	if !strings.HasSuffix(p, ".pyc") || strings.Contains(p, "!") {
		return "", false
	}
	dir, base := path.Split(p)
	base = strings.TrimSuffix(base, ".pyc")
	if d := strings.TrimSuffix(dir, "/"); path.Base(d) == "__pycache__" {
		dir = path.Dir(d) + "/"
		if i := strings.IndexByte(base, '.'); i > 0 {
			base = base[:i] // m.cpython-311.opt-1 -> m
		}
	}
	if dir == "./" {
		dir = ""
	}
	return dir + base + ".py", true
}

// judgeByContext applies the rules above to the findings of one target
// (pointers into the scanner's findings, so the caller holds the lock) and
// reports which of them to drop.
func judgeByContext(fs []*Finding, cf contextFiles) map[*Finding]bool {
	drop := map[*Finding]bool{}
	byValue := map[string]*Finding{}
	for _, f := range fs {
		if len(f.Secret) > 0 {
			byValue[f.Path+"\x00"+string(f.Secret)] = f
		}
	}
	for _, f := range fs {
		if f.KnownSecret != "" || len(f.Secret) == 0 || f.wholeFile {
			continue
		}
		if src, ok := pycSource(f.Path); ok {
			if g := byValue[src+"\x00"+string(f.Secret)]; g != nil {
				f.Class = g.Class
				f.Note = joinNote("same value as in its source "+src, g.Note)
				continue
			}
			if data, ok := cf.read(src); ok && bytes.Contains(data, f.Secret) {
				drop[f] = true
			}
			continue
		}
		if f.Class == ClassSecret {
			if by := goTestData(walk.OuterPath(f.Path), cf); by != "" {
				f.Class = ClassFixture
				f.Note = joinNote(f.Note, "test data named only by "+by)
			}
		}
	}
	return drop
}

// goTestData reports the _test.go file that names the file at p, when p is
// a data file of a Go package directory that only its tests name.
func goTestData(p string, cf contextFiles) string {
	dir, base := path.Split(p)
	if strings.HasSuffix(base, ".go") || base == "" {
		return ""
	}
	quoted := [][]byte{[]byte(`"` + base + `"`), []byte(`/` + base + `"`), []byte("`" + base + "`")}
	names := func(data []byte) bool {
		for _, q := range quoted {
			if bytes.Contains(data, q) {
				return true
			}
		}
		return false
	}
	by := ""
	for _, n := range cf.list(strings.TrimSuffix(dir, "/")) {
		if !strings.HasSuffix(n, ".go") {
			continue
		}
		data, ok := cf.read(dir + n)
		if !ok || !names(data) {
			continue
		}
		if !strings.HasSuffix(n, "_test.go") {
			return "" // the package itself reads it
		}
		if by == "" {
			by = dir + n
		}
	}
	return by
}
