package scan

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/secretbroker/secretbroker/lint/provenance"
	"github.com/secretbroker/secretbroker/lint/walk"
)

// FS scans a plain directory or file (fs: targets, build contexts, staged
// files). Symbolic links are not followed, so loops cannot trap the walk.
// only, when non-nil, limits the walk to those relative paths.
func (s *Scanner) FS(ctx context.Context, target, root string, only func(rel string) bool) {
	w := walk.New(s.Engine)
	w.Limits = s.Limits
	st, err := os.Lstat(root)
	if err != nil {
		s.Fail("%s: %v", target, err)
		return
	}
	scanFile := func(p, rel string) {
		f, err := os.Open(p)
		if err != nil {
			s.Fail("%s: %v", target, err)
			return
		}
		defer f.Close()
		s.File(w, target, filepath.ToSlash(rel), f)
		if s.Progress != nil {
			// Counted after the file: the walker needs the *os.File
			// itself (zips are read in place).
			s.Progress.Files.Add(1)
			if st, err := f.Stat(); err == nil {
				s.Progress.Bytes.Add(st.Size())
			}
		}
	}
	if !st.IsDir() {
		scanFile(root, filepath.Base(root))
		return
	}
	// host names the tree from the host's root ("usr/" for fs:/usr).
	host := ""
	if abs, err := filepath.Abs(root); err == nil {
		if host = strings.TrimPrefix(filepath.ToSlash(abs), "/"); host != "" {
			host += "/"
		}
	}
	var manifests []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			s.Fail("%s: %v", target, err)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if only != nil && !only(filepath.ToSlash(rel)) {
			return nil
		}
		if r := filepath.ToSlash(rel); provenance.IsManifest(host + r) {
			manifests = append(manifests, r)
		}
		scanFile(p, rel)
		return nil
	})
	if err != nil {
		s.Fail("%s: %v", target, err)
	}
	s.fsProvenance(target, root, host, manifests)
	s.fsContext(target, root)
}

// dirFiles reads the context of fs: findings from the tree itself.
type dirFiles string

func (d dirFiles) read(p string) ([]byte, bool) {
	fp := filepath.Join(string(d), filepath.FromSlash(p))
	if st, err := os.Lstat(fp); err != nil || !st.Mode().IsRegular() || st.Size() > 16<<20 {
		return nil, false
	}
	data, err := os.ReadFile(fp)
	return data, err == nil
}

func (d dirFiles) list(dir string) []string {
	es, _ := os.ReadDir(filepath.Join(string(d), filepath.FromSlash(dir)))
	var out []string
	for _, e := range es {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out
}

// fsContext judges findings by the files that give them context
// (judgeByContext).
func (s *Scanner) fsContext(target, root string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fs []*Finding
	for i := range s.res.Findings {
		if f := &s.res.Findings[i]; f.Target == target && f.Status == StatusFile {
			fs = append(fs, f)
		}
	}
	drop := judgeByContext(fs, dirFiles(root))
	if len(drop) == 0 {
		return
	}
	kept := s.res.Findings[:0]
	for i := range s.res.Findings {
		if !drop[&s.res.Findings[i]] {
			kept = append(kept, s.res.Findings[i])
		}
	}
	s.res.Findings = kept
}

// fsProvenance marks the findings of a directory target that are in files
// a package shipped unmodified. Paths are named from the host's root, so
// that fs:/usr finds its owners in /var/lib/dpkg; manifests inside the tree
// (an unpacked root filesystem, a site-packages directory, a Go module
// cache) count as well. Only files with findings are hashed, after the walk.
func (s *Scanner) fsProvenance(target, root, host string, manifests []string) {
	s.mu.Lock()
	var files []string
	for _, f := range s.res.Findings {
		if f.Target == target && f.Status == StatusFile {
			files = append(files, walk.OuterPath(f.Path))
		}
	}
	s.mu.Unlock()
	if len(files) == 0 {
		return
	}
	x := provenance.New()
	read := func(p, name string) {
		if st, err := os.Stat(p); err != nil || st.Size() > provenance.MaxManifest(name) {
			return
		}
		if data, err := os.ReadFile(p); err == nil {
			x.AddManifest(name, data)
		}
	}
	if host != "" {
		// The host's package databases; a tree that is a root filesystem
		// brings its own as well.
		var ms []string
		for _, glob := range []string{"/var/lib/dpkg/info/*.md5sums", "/var/lib/dpkg/status.d/*.md5sums", "/lib/apk/db/installed", "/var/lib/rpm/*", "/usr/lib/sysimage/rpm/*"} {
			g, _ := filepath.Glob(glob)
			ms = append(ms, g...)
		}
		for _, m := range ms {
			if name := strings.TrimPrefix(filepath.ToSlash(m), "/"); provenance.IsManifest(name) {
				read(m, name)
			}
		}
	}
	for _, m := range manifests {
		read(filepath.Join(root, m), host+m)
	}
	digests := map[string]provenance.Digest{}
	modRoots := map[string]bool{}
	for _, rel := range files {
		d, err := fileDigest(filepath.Join(root, rel))
		if err != nil {
			continue
		}
		digests[rel] = d
		if r, ok := provenance.ModuleRootOf(host + rel); ok && host != "" {
			modRoots[r] = true
		}
	}
	// A Go module tree is checked whole against its .ziphash.
	for r := range modRoots {
		// Names are from the host's root: the tree and the module cache
		// it is part of are read there.
		zh := provenance.ZipHashPath(r)
		read(filepath.FromSlash("/"+zh), zh)
		_ = filepath.WalkDir(filepath.FromSlash("/"+r), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if dg, err := fileDigest(p); err == nil {
					x.AddModuleFile(strings.TrimPrefix(filepath.ToSlash(p), "/"), dg.SHA256)
				}
			}
			return nil
		})
	}
	s.Edit(func(f *Finding) {
		if f.Target != target || f.Status != StatusFile {
			return
		}
		outer := walk.OuterPath(f.Path)
		if d, ok := digests[outer]; ok {
			if o := x.Owner(host+outer, d); o != "" {
				f.Class = ClassShipped
				f.Note = joinNote(f.Note, "shipped by "+o+", unmodified")
			}
		}
	})
}

func fileDigest(p string) (provenance.Digest, error) {
	var d provenance.Digest
	f, err := os.Open(p)
	if err != nil {
		return d, err
	}
	defer f.Close()
	m5, s1, s256 := md5.New(), sha1.New(), sha256.New()
	if _, err := io.Copy(io.MultiWriter(m5, s1, s256), f); err != nil {
		return d, err
	}
	copy(d.MD5[:], m5.Sum(nil))
	copy(d.SHA1[:], s1.Sum(nil))
	copy(d.SHA256[:], s256.Sum(nil))
	return d, nil
}

// File scans one stream as the file name of target (staged files, build
// context files), with walker w.
func (s *Scanner) File(w *walk.Walker, target, name string, r io.Reader) {
	w.OnMatch = func(m walk.Match) {
		fi := fromMatch(m.Match)
		fi.Target, fi.Path, fi.Status = target, m.Path, StatusFile
		s.add(fi)
	}
	w.OnSkip = func(k walk.Skip) {
		k = judgeSkip(k)
		s.addSkip(Skip{Target: target, Path: k.Path, Reason: k.Reason, Incomplete: k.Incomplete})
	}
	if err := w.File(r, name); err != nil {
		s.Fail("%s: %s: %v", target, name, err)
	}
}
