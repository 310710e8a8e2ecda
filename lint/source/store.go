package source

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
)

// store opens named blobs of an image stored on disk.
type store interface {
	open(name string) (io.ReadCloser, error)
}

// dirStore is a directory (OCI layout, skopeo dir:).
type dirStore string

func (d dirStore) open(name string) (io.ReadCloser, error) {
	clean := path.Clean("/" + name)
	return os.Open(filepath.Join(string(d), filepath.FromSlash(clean)))
}

// tarStore indexes a tar file once (headers only: the tar reader seeks over
// file bodies) and then opens members as sections of the file, so that
// layers can be read in parallel with no extraction.
type tarStore struct {
	f       *os.File
	entries map[string][2]int64 // offset, size
}

func openTarStore(p string) (*tarStore, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	ts := &tarStore{f: f, entries: map[string][2]int64{}}
	tr := tar.NewReader(f)
	links := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: not a readable tar archive: %w", p, err)
		}
		name := path.Clean("/" + hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				f.Close()
				return nil, err
			}
			ts.entries[name] = [2]int64{off, hdr.Size}
		case tar.TypeSymlink:
			links[name] = path.Join(path.Dir(name), hdr.Linkname)
		case tar.TypeLink:
			links[name] = path.Clean("/" + hdr.Linkname)
		}
	}
	// docker save (old format) links identical layers; follow one level.
	for n, t := range links {
		if e, ok := ts.entries[t]; ok {
			ts.entries[n] = e
		}
	}
	return ts, nil
}

func (t *tarStore) open(name string) (io.ReadCloser, error) {
	e, ok := t.entries[path.Clean("/"+name)]
	if !ok {
		return nil, fmt.Errorf("%s: no such file in the archive", name)
	}
	return io.NopCloser(io.NewSectionReader(t.f, e[0], e[1])), nil
}
