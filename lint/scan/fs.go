package scan

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"

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
	}
	if !st.IsDir() {
		scanFile(root, filepath.Base(root))
		return
	}
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
		scanFile(p, rel)
		return nil
	})
	if err != nil {
		s.Fail("%s: %v", target, err)
	}
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
		s.addSkip(Skip{Target: target, Path: k.Path, Reason: k.Reason, Incomplete: k.Incomplete})
	}
	if err := w.File(r, name); err != nil {
		s.Fail("%s: %s: %v", target, name, err)
	}
}
