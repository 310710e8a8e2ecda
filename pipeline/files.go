package pipeline

import (
	"crypto/sha256"
	"os"

	"github.com/secretbroker/secretbroker/tmpfs"
)

// Files is what the Broker mode keeps between deliveries: the SHA-256 of
// each file it wrote or adopted in the directory, never a value. A file
// whose digest is unchanged is not rewritten.
type Files struct {
	m map[string]*fileState
}

type fileState struct {
	digest [sha256.Size]byte
	have   bool // the file is in place (false once removed)
}

// AdoptFiles removes the temporary files an interrupted writer left in d
// and adopts the files an earlier broker wrote there for the spec's
// secrets, templates and the ready marker: they stay in place and are
// replaced atomically only when their value changes. It returns their
// digests and how many secret or template files it adopted.
func (r *Run) AdoptFiles(d *tmpfs.Dir) (*Files, int) {
	f := &Files{m: make(map[string]*fileState, len(r.Spec.Secrets)+len(r.Spec.Templates))}
	if n := d.RemoveStaleTemps(); n > 0 {
		r.Log.Info("removed temporary files an interrupted writer left", "count", n)
	}
	names := []string{tmpfs.ReadyMarker}
	for _, sec := range r.Spec.Secrets {
		names = append(names, sec.Name)
	}
	for _, t := range r.Spec.Templates {
		names = append(names, t.Dest)
	}
	adopted := 0
	for _, name := range names {
		sum, ok, err := d.Digest(name)
		if err != nil {
			r.Log.Warn("cannot read an existing file; it will be replaced", "file", name, "err", err)
			continue
		}
		if ok {
			d.Adopt(name)
			if name != tmpfs.ReadyMarker {
				f.m[name] = &fileState{digest: sum, have: true}
				adopted++
			}
		}
	}
	if adopted > 0 {
		r.Log.Info("adopted files already in the directory; they are replaced atomically only when their value changes", "count", adopted, "dir", d.Path)
	}
	return f, adopted
}

// put writes name when its digest differs from the last one written (or
// adopted); replaced says an earlier file of that name was replaced.
func (f *Files) put(d *tmpfs.Dir, name string, val []byte, mode os.FileMode) (replaced, wrote bool, err error) {
	sum := sha256.Sum256(val)
	st := f.m[name]
	if st != nil && st.have && st.digest == sum {
		return false, false, nil
	}
	if err := d.Write(name, val, mode); err != nil {
		return false, false, err
	}
	if st == nil {
		f.m[name] = &fileState{digest: sum, have: true}
		return false, true, nil
	}
	replaced = st.have
	st.digest, st.have = sum, true
	return replaced, true, nil
}

// Remove removes name's file from d (a secret deleted upstream, past
// max_staleness); the next delivery of it writes it anew.
func (f *Files) Remove(d *tmpfs.Dir, name string) {
	if st := f.m[name]; st != nil && st.have {
		if err := d.Remove(name); err == nil {
			st.have = false
		}
	}
}
