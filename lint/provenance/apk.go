package provenance

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// apkDB is Alpine's installed-package database (relative to the root).
const apkDB = "lib/apk/db/installed"

// addAPK reads an apk database of the root filesystem at root ("" or a
// prefix ending in "/"). Each package is a block of "K:value" lines: P: the
// package, F: a directory (relative to the root), R: a file in it, and the
// Z: after an R: that file's checksum, "Q1" + base64 of its SHA-1 ("Q2":
// SHA-256, as apk v3 writes it).
func (x *Index) addAPK(root string, data []byte) {
	var pkg, dir, file string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || len(k) != 1 {
			pkg, dir, file = "", "", "" // a blank line ends a package
			continue
		}
		switch k {
		case "P":
			pkg, dir, file = v, "", ""
		case "F":
			dir, file = v, ""
		case "R":
			file = v
		case "Z":
			if pkg == "" || file == "" || len(v) < 3 || v[0] != 'Q' {
				continue
			}
			algo := map[byte]string{'1': "sha1", '2': "sha256"}[v[1]]
			sum, err := base64.StdEncoding.DecodeString(v[2:])
			if algo == "" || err != nil {
				continue
			}
			p := file
			if dir != "" {
				p = strings.TrimSuffix(dir, "/") + "/" + file
			}
			x.files[root+p] = owner{pkg: pkg, kind: "apk", algo: algo, sum: hex.EncodeToString(sum)}
			file = ""
		}
	}
}
