// Package provenance tells whether a file was shipped, unmodified, by the
// package that installed it: its digest matches the package manager's
// manifest (dpkg's info/*.md5sums, also under status.d/ as distroless
// images keep them; Python's *.dist-info/RECORD; apk's lib/apk/db/installed;
// the rpm database, see rpm.go), or it sits in a Go module cache tree
// pkg/mod/<module>@<version>/ whose files hash to the module's .ziphash (the
// go.sum h1: hash). Findings in such files are reported in a lower class.
// Anything else — a modified file, one no package owns, one whose manifest
// names a digest algorithm not computed here — stays fully reported.
package provenance

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
)

// Digest is what a file's content hashes to. SHA1 (apk, old rpm) is all
// zero when it was not computed: the walker hashes large files while they
// stream and leaves SHA1 out there, to keep the scan's cost down.
type Digest struct {
	MD5    [16]byte
	SHA1   [20]byte
	SHA256 [32]byte
}

// Sum computes every digest of data.
func Sum(data []byte) Digest {
	return Digest{MD5: md5.Sum(data), SHA1: sha1.Sum(data), SHA256: sha256.Sum256(data)}
}

// owner is a manifest's entry for one file: the package and the digest it
// recorded, as hex of one algorithm.
type owner struct {
	pkg, kind string
	algo      string // "md5", "sha1", "sha256"
	sum       string // hex
}

// Index holds the manifests of one image (or file tree).
type Index struct {
	files    map[string]owner
	zipHash  map[string]string // "<escaped module>@<version>" -> "h1:..."
	modFiles map[string][32]byte
	// rpmDBs are rpm databases seen, by directory, read on first use
	// (a database and its -wal file belong together).
	rpmDBs map[string]map[string][]byte
}

// New returns an empty index.
func New() *Index {
	return &Index{files: map[string]owner{}, zipHash: map[string]string{}, modFiles: map[string][32]byte{}, rpmDBs: map[string]map[string][]byte{}}
}

// IsManifest reports whether name (a path relative to the root) is a
// package manifest the index reads.
func IsManifest(name string) bool {
	d, b := path.Dir(name), path.Base(name)
	switch {
	case strings.HasSuffix(b, ".md5sums") && (strings.HasSuffix(d, "var/lib/dpkg/info") || strings.HasSuffix(d, "var/lib/dpkg/status.d")):
		return true
	case b == "RECORD" && strings.HasSuffix(d, ".dist-info"):
		return true
	case strings.HasSuffix(b, ".ziphash") && strings.Contains(name, "pkg/mod/cache/download/"):
		return true
	case strings.HasSuffix(name, apkDB) && (name == apkDB || strings.HasSuffix(name, "/"+apkDB)):
		return true
	}
	return isRPMDB(name)
}

// MaxManifest bounds a manifest read into memory. rpm databases are large
// (a Fedora base image's rpmdb.sqlite is about 10 MiB, a BerkeleyDB
// Packages file of a full system over 100 MiB).
func MaxManifest(name string) int64 {
	if isRPMDB(name) {
		return 256 << 20
	}
	return 16 << 20
}

// Candidate reports whether a file at name may be owned by a package, so
// that its digest is worth computing while it is read: system directories,
// Python package directories, the Go module cache.
func Candidate(name string) bool {
	for _, p := range []string{"usr/", "lib/", "lib32/", "lib64/", "libx32/", "bin/", "sbin/", "etc/", "opt/"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return strings.Contains(name, "-packages/") || ModuleFile(name)
}

// ModuleFile reports whether name is inside an extracted Go module tree
// (pkg/mod/<module>@<version>/...), whose every digest is kept.
func ModuleFile(name string) bool {
	_, _, ok := moduleRoot(name)
	return ok
}

// ModuleRootOf returns the module tree root of a file in one.
func ModuleRootOf(name string) (string, bool) {
	r, _, ok := moduleRoot(name)
	return r, ok
}

// ZipHashPath names the .ziphash of the module tree at root
// (".../pkg/mod/<mod>@<ver>"): ".../pkg/mod/cache/download/<mod>/@v/<ver>.ziphash".
func ZipHashPath(root string) string {
	i := strings.Index(root, "pkg/mod/")
	mod, ver, _ := strings.Cut(root[i+8:], "@")
	return root[:i+8] + "cache/download/" + mod + "/@v/" + ver + ".ziphash"
}

// moduleRoot splits ".../pkg/mod/<mod>@<ver>/rest" into the root
// ".../pkg/mod/<mod>@<ver>" and "<mod>@<ver>".
func moduleRoot(name string) (root, modver string, ok bool) {
	i := strings.Index(name, "pkg/mod/")
	if i < 0 || strings.HasPrefix(name[i+8:], "cache/") {
		return "", "", false
	}
	rest := name[i+8:]
	at := strings.IndexByte(rest, '@')
	if at < 0 {
		return "", "", false
	}
	sl := strings.IndexByte(rest[at:], '/')
	if sl < 0 {
		return "", "", false
	}
	return name[:i+8] + rest[:at+sl], rest[:at+sl], true
}

// AddManifest reads one manifest (named as IsManifest names it). A later
// layer's manifest replaces an earlier one's entries.
func (x *Index) AddManifest(name string, data []byte) {
	d, b := path.Dir(name), path.Base(name)
	root := ""
	if i := strings.Index(name, "var/lib/dpkg/"); i >= 0 {
		root = name[:i]
	}
	switch {
	case isRPMDB(name):
		if x.rpmDBs[d] == nil {
			x.rpmDBs[d] = map[string][]byte{}
		}
		x.rpmDBs[d][b] = data
	case strings.HasSuffix(name, apkDB):
		x.addAPK(strings.TrimSuffix(name, apkDB), data)
	case strings.HasSuffix(b, ".md5sums"):
		pkg := strings.TrimSuffix(b, ".md5sums")
		if i := strings.IndexByte(pkg, ':'); i >= 0 {
			pkg = pkg[:i]
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			sum, file, ok := strings.Cut(sc.Text(), "  ")
			if ok && len(sum) == 32 {
				x.files[root+strings.TrimPrefix(file, "/")] = owner{pkg: pkg, kind: "dpkg", algo: "md5", sum: sum}
			}
		}
	case b == "RECORD":
		site := path.Dir(d) // the directory the RECORD's paths are relative to
		pkg := strings.TrimSuffix(path.Base(d), ".dist-info")
		if i := strings.IndexByte(pkg, '-'); i > 0 {
			pkg = pkg[:i]
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			f := strings.Split(sc.Text(), ",")
			if len(f) < 2 || !strings.HasPrefix(f[1], "sha256=") {
				continue
			}
			sum, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(f[1], "sha256="))
			if err != nil {
				continue
			}
			p := path.Clean(path.Join(site, f[0]))
			x.files[p] = owner{pkg: pkg, kind: "pip", algo: "sha256", sum: hex.EncodeToString(sum)}
		}
	case strings.HasSuffix(b, ".ziphash"):
		// .../pkg/mod/cache/download/<mod>/@v/<ver>.ziphash
		i := strings.Index(name, "pkg/mod/cache/download/")
		mod := strings.TrimSuffix(name[i+len("pkg/mod/cache/download/"):], "/@v/"+b)
		x.zipHash[name[:i]+"pkg/mod/"+mod+"@"+strings.TrimSuffix(b, ".ziphash")] = strings.TrimSpace(string(data))
	}
}

// AddModuleFile records the digest of a file inside a Go module tree.
func (x *Index) AddModuleFile(name string, sum [32]byte) { x.modFiles[name] = sum }

// Owner says which package shipped the file at name unmodified, given its
// digest: "dpkg package libgnutls30", "pip package cryptography", "Go
// module golang.org/x/crypto@v0.1.0"; "" when none did.
func (x *Index) Owner(name string, d Digest) string {
	x.readRPM()
	if o, ok := x.files[name]; ok {
		var got []byte
		switch o.algo {
		case "md5":
			got = d.MD5[:]
		case "sha1":
			if d.SHA1 != ([20]byte{}) {
				got = d.SHA1[:]
			}
		case "sha256":
			got = d.SHA256[:]
		}
		if got != nil && o.sum == hex.EncodeToString(got) {
			return o.kind + " package " + o.pkg
		}
		return ""
	}
	if root, modver, ok := moduleRoot(name); ok {
		want := x.zipHash[root]
		if want != "" && want == x.moduleHash(root, modver) {
			return "Go module " + unescape(modver)
		}
	}
	return ""
}

// moduleHash is golang.org/x/mod/sumdb/dirhash.Hash1 over the recorded
// files of the module tree at root.
func (x *Index) moduleHash(root, modver string) string {
	var names []string
	for n := range x.modFiles {
		if strings.HasPrefix(n, root+"/") {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		return unescape(modver)+"/"+names[i][len(root)+1:] < unescape(modver)+"/"+names[j][len(root)+1:]
	})
	h := sha256.New()
	for _, n := range names {
		s := x.modFiles[n]
		fmt.Fprintf(h, "%x  %s\n", s[:], unescape(modver)+"/"+n[len(root)+1:])
	}
	return "h1:" + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// unescape undoes the module cache's case encoding ("!b" is "B").
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '!' && i+1 < len(s) {
			i++
			b.WriteByte(s[i] - 'a' + 'A')
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
