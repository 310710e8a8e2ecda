package scan

import (
	"io"
	"sync/atomic"
)

// Progress counts what a scan has read so far, for a progress line on a
// terminal (lintcmd draws it). Every field is updated while workers read,
// so all are atomic. Bytes are the bytes read as stored (compressed layer
// blobs, files of fs:); Total is their sum when every layer's size is known
// from its manifest, else 0 (then there is no ETA).
type Progress struct {
	Layers, LayersDone atomic.Int64
	Files, Bytes       atomic.Int64
	Total              atomic.Int64
	unknownSize        atomic.Bool
}

// Known reports whether Total covers everything the scan will read.
func (p *Progress) Known() bool { return !p.unknownSize.Load() && p.Total.Load() > 0 }

// reader counts the bytes read from r.
func (p *Progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return countingReader{r, &p.Bytes}
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}
