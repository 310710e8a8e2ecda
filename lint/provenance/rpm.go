package provenance

import (
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver go-rpmdb opens rpmdb.sqlite with
)

// rpmDirs are where rpm keeps its database, relative to the root: the
// classic place and the one of Fedora 36+ and openSUSE.
var rpmDirs = []string{"var/lib/rpm", "usr/lib/sysimage/rpm"}

// rpmFiles are the database files of each backend, preferred first:
// SQLite (rpm 4.16+; its write-ahead log holds the latest changes until a
// checkpoint), ndb (SUSE), BerkeleyDB (RHEL 8 and older).
var rpmFiles = []string{"rpmdb.sqlite", "rpmdb.sqlite-wal", "Packages.db", "Packages"}

func isRPMDB(name string) bool {
	d, b := path.Dir(name), path.Base(name)
	found := false
	for _, f := range rpmFiles {
		found = found || b == f
	}
	if !found {
		return false
	}
	for _, r := range rpmDirs {
		if d == r || strings.HasSuffix(d, "/"+r) {
			return true
		}
	}
	return false
}

// readRPM reads the rpm databases added since the last call into the index:
// each installed file's digest, in the algorithm its package names
// (RPMTAG_FILEDIGESTALGO; MD5 when absent, as rpm itself assumes). A
// database that cannot be read adds nothing, so its files stay reported.
func (x *Index) readRPM() {
	if len(x.rpmDBs) == 0 {
		return
	}
	dirs := make([]string, 0, len(x.rpmDBs))
	for d := range x.rpmDBs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		root := ""
		for _, r := range rpmDirs {
			if strings.HasSuffix(d, r) {
				root = strings.TrimSuffix(d, r)
			}
		}
		x.addRPM(root, x.rpmDBs[d])
	}
	x.rpmDBs = map[string]map[string][]byte{}
}

// addRPM writes one database (its files by name) to a private temporary
// directory, since the readers open a path, and reads its packages.
func (x *Index) addRPM(root string, files map[string][]byte) {
	main := ""
	for _, f := range rpmFiles {
		if _, ok := files[f]; ok && main == "" && !strings.HasSuffix(f, "-wal") {
			main = f
		}
	}
	if main == "" {
		return
	}
	tmp, err := os.MkdirTemp("", "lint-rpmdb-")
	if err != nil {
		return
	}
	defer os.RemoveAll(tmp)
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, f), data, 0o600); err != nil {
			return
		}
	}
	db, err := rpmdb.Open(filepath.Join(tmp, main))
	if err != nil {
		return
	}
	defer db.Close()
	pkgs, err := db.ListPackages()
	if err != nil {
		return
	}
	algos := map[rpmdb.DigestAlgorithm]string{0: "md5", rpmdb.PGPHASHALGO_MD5: "md5", rpmdb.PGPHASHALGO_SHA1: "sha1", rpmdb.PGPHASHALGO_SHA256: "sha256"}
	for _, p := range pkgs {
		algo, ok := algos[p.DigestAlgorithm]
		if !ok {
			continue // SHA-384/512 and others: not computed, stays reported
		}
		fs, err := p.InstalledFiles()
		if err != nil {
			continue
		}
		for _, f := range fs {
			if f.Digest != "" {
				x.files[root+strings.TrimPrefix(f.Path, "/")] = owner{pkg: p.Name, kind: "rpm", algo: algo, sum: strings.ToLower(f.Digest)}
			}
		}
	}
}
