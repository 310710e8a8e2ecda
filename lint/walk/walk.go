// Package walk streams a layer (or any archive or file) once, without
// extracting it, and feeds every file's bytes to the rule engine: files
// inside nested archives (tar, gzip, zip/jar, bzip2) to a bounded depth,
// and zlib-compressed git objects. Nothing is written to disk, and memory is
// bounded: a zip is the only format that needs random access, and it is
// read into memory only up to a cap.
package walk

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/secretbroker/secretbroker/lint/provenance"
	"github.com/secretbroker/secretbroker/lint/rules"
)

// Limits bound the work spent on one layer.
type Limits struct {
	// MaxDepth is how many archives deep the walker goes (a layer is 0).
	MaxDepth int
	// MaxZipBytes caps the in-memory copy of one zip/jar.
	MaxZipBytes int64
	// MaxSparseBytes caps the logical size of a sparse tar entry that is
	// read: its holes cost nothing in the archive (a few bytes can declare
	// terabytes, like /var/log/lastlog), so larger ones are skipped.
	MaxSparseBytes int64
	// MinExpandBytes is what any nested decompressor may produce; beyond
	// it, up to 200 times the compressed size (archive bombs stop there).
	MinExpandBytes int64
	// MaxFileExpandBytes bounds the bytes all decompressors together may
	// produce for one top-level file (a layer entry, a file of fs:), and
	// ScanExpand, when set, the bytes of the whole scan (shared by the
	// walkers; MaxScanExpandBytes is its cap). A 42.zip-style bomb stops
	// there, reported as not read.
	MaxFileExpandBytes int64
	MaxScanExpandBytes int64
	ScanExpand         *atomic.Int64
}

// DefaultLimits are the limits of a new Walker.
var DefaultLimits = Limits{MaxDepth: 6, MaxZipBytes: 64 << 20, MaxSparseBytes: 64 << 20, MinExpandBytes: 1 << 30, MaxFileExpandBytes: 4 << 30, MaxScanExpandBytes: 64 << 30}

// Skip is something the walker did not read in full. Incomplete skips mean a
// secret could hide there; they make the scan result "incomplete".
type Skip struct {
	Path       string
	Reason     string
	Incomplete bool
}

// Match is a rule hit in a file.
type Match struct {
	Path string // "usr/app/config", or "app.jar!BOOT-INF/application.yml"
	rules.Match
}

// Walker walks one stream at a time; use one per goroutine.
type Walker struct {
	Limits  Limits
	OnMatch func(Match)
	OnSkip  func(Skip)
	// OnEntry sees every tar header of the outermost archive (with the
	// cleaned name), for whiteout and overwrite bookkeeping.
	OnEntry func(name string, hdr *tar.Header)
	// DiffHash, when set, receives the uncompressed layer stream (to check
	// the layer's DiffID when the blob digest is unknown).
	DiffHash io.Writer
	// OnManifest receives each package manifest of the outermost archive
	// (provenance.IsManifest) whole; OnDigest the digest of each file a
	// package may own (provenance.Candidate) that had a match, and of every
	// file of a Go module tree. Nil: no hashing.
	OnManifest func(name string, data []byte)
	OnDigest   func(name string, d provenance.Digest)

	eng   *rules.Engine
	sc    *rules.Scanner
	outer *errReader
	// at is the file File was given, when it can be read at offsets.
	at     io.ReaderAt
	atSize int64
	// zipHeld is the memory held by open zip copies (nested zips add up).
	zipHeld int64
	// held is the copy of the candidate file being scanned (provenanceFile).
	held bytes.Buffer
	// expanded counts what decompressors produced for the current
	// top-level file; capped is set once a bound is hit, so the rest of
	// that file is not opened at all.
	expanded int64
	capped   error
}

// New returns a walker using engine e.
func New(e *rules.Engine) *Walker {
	return &Walker{Limits: DefaultLimits, eng: e, sc: e.NewScanner()}
}

// errReader remembers the first error of the outermost stream, so that a
// failure inside a nested archive can be told apart from a broken layer.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// Magic numbers of the formats the walker opens.
var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicZip   = []byte("PK\x03\x04")
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
)

// archive marks the kinds that count against MaxDepth.
var archive = map[string]bool{"tar archive": true, "gzip file": true, "bzip2 file": true, "zstd file": true, "zip archive": true, "xz file": true}

// sniff names what a file holds from its first bytes (and, for git, its
// path); "" is plain content.
func sniff(head []byte, name string) string {
	switch {
	case isTar(head):
		return "tar archive"
	case bytes.HasPrefix(head, magicGzip):
		return "gzip file"
	case bytes.HasPrefix(head, magicBzip2) && len(head) > 3 && head[3] >= '1' && head[3] <= '9':
		return "bzip2 file"
	case bytes.HasPrefix(head, magicZstd):
		return "zstd file"
	case bytes.HasPrefix(head, magicZip):
		return "zip archive"
	case bytes.HasPrefix(head, magicXz):
		return "xz file"
	case len(head) > 1 && head[0]&0x0f == 8 && (uint(head[0])<<8|uint(head[1]))%31 == 0 && gitObject().MatchString(name):
		return "git object"
	case strings.HasSuffix(name, ".pack") && strings.Contains(name, "objects/pack/") && bytes.HasPrefix(head, []byte("PACK")):
		return "git pack"
	}
	return ""
}

func isTar(head []byte) bool {
	return len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar"))
}

// Layer walks a layer blob: gzip, zstd or plain tar, told apart by magic
// bytes rather than trusted media types.
func (w *Walker) Layer(r io.Reader) error {
	w.outer = &errReader{r: r}
	br := bufio.NewReaderSize(w.outer, 64<<10)
	head, _ := br.Peek(4)
	var tr io.Reader = br
	switch {
	case bytes.HasPrefix(head, magicGzip):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("layer is not valid gzip: %w", err)
		}
		defer gz.Close()
		tr = gz
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return fmt.Errorf("layer is not valid zstd: %w", err)
		}
		defer zr.Close()
		tr = zr
	}
	if w.DiffHash != nil {
		tr = io.TeeReader(tr, w.DiffHash)
	}
	err := w.tar(tr, "", 0, true)
	if err == nil {
		// Drain: a digest check downstream needs every byte, and trailing
		// garbage after the tar end is read, not ignored.
		_, err = io.Copy(io.Discard, tr)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the layer ends early, so it is truncated or corrupt (%w)", err)
	}
	return err
}

// CleanName makes a tar name safe to print and compare: relative, no "..",
// no leading "/" or "./". Entries are never written, so this is about
// reporting and whiteout bookkeeping, not about escaping a directory.
func CleanName(name string) string {
	c := path.Clean("/" + name)
	return strings.TrimPrefix(c, "/")
}

func (w *Walker) tar(r io.Reader, prefix string, depth int, outermost bool) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar %s: %w", orLayer(prefix), err)
		}
		name := prefix + CleanName(hdr.Name)
		if outermost && w.OnEntry != nil {
			w.OnEntry(name, hdr)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		default:
			continue
		}
		// A sparse entry's holes read as zeros that take no space in the
		// archive: a few bytes can declare terabytes. Read it only when its
		// logical size is modest.
		if isSparse(hdr) && hdr.Size > w.Limits.MaxSparseBytes {
			w.skip(Skip{Path: name, Reason: fmt.Sprintf("sparse file of %d bytes (over %d MiB): not read", hdr.Size, w.Limits.MaxSparseBytes>>20), Incomplete: true})
			continue
		}
		if outermost {
			w.expanded, w.capped = 0, nil
		}
		if outermost && w.OnDigest != nil {
			if done, err := w.provenanceFile(tr, name, depth, hdr.Size); done {
				if err != nil {
					return err
				}
				continue
			}
		}
		if err := w.file(tr, name, depth, hdr.Size); err != nil {
			return err
		}
	}
}

// maxHeld bounds the copy of a candidate file kept while it is scanned.
const maxHeld = 16 << 20

// provenanceFile scans a file of the outermost archive that is a package
// manifest (kept whole for OnManifest) or may be owned by a package
// (hashed for OnDigest). It reports false when the file is neither.
//
// Only a file with a match needs its digest, and matches are rare, so a
// candidate of up to maxHeld bytes is copied while it is scanned and
// hashed (MD5, SHA-1, SHA-256) only after a match: a copy costs far less
// than three hashes of every file. A larger file is hashed while it
// streams, with MD5 and SHA-256 only (no SHA-1, so apk provenance does not
// reach it); every file of a Go module tree needs its SHA-256 for the
// tree's hash, match or not.
func (w *Walker) provenanceFile(r io.Reader, name string, depth int, size int64) (bool, error) {
	if provenance.IsManifest(name) && size <= provenance.MaxManifest(name) {
		data, err := io.ReadAll(r)
		if err != nil {
			return true, w.fail(name, err)
		}
		if w.OnManifest != nil {
			w.OnManifest(name, data)
		}
		return true, w.file(bytes.NewReader(data), name, depth, size)
	}
	if !provenance.Candidate(name) {
		return false, nil
	}
	module := provenance.ModuleFile(name)
	m5, s256 := md5.New(), sha256.New()
	var sink io.Writer
	switch {
	case module:
		sink = s256
	case size <= maxHeld:
		w.held.Reset()
		sink = &w.held
	default:
		sink = io.MultiWriter(m5, s256)
	}
	cr := &countReader{r: io.TeeReader(r, sink)}
	orig, n := w.OnMatch, 0
	w.OnMatch = func(m Match) { n++; orig(m) }
	err := w.file(cr, name, depth, size)
	w.OnMatch = orig
	if err != nil || (n == 0 && !module) {
		return true, err
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return true, w.fail(name, err)
	}
	if cr.n != size {
		return true, nil
	}
	var d provenance.Digest
	if sink == &w.held {
		d = provenance.Sum(w.held.Bytes())
	} else {
		copy(d.MD5[:], m5.Sum(nil))
		copy(d.SHA256[:], s256.Sum(nil))
	}
	w.OnDigest(name, d)
	return true, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func orLayer(p string) string {
	if p == "" {
		return "layer"
	}
	return strings.TrimSuffix(p, "!")
}

// File scans one file's content; exported for fs: targets and tests.
//
// When r is a file on disk (an io.ReaderAt with Stat), a zip is opened in
// place instead of being read into memory.
func (w *Walker) File(r io.Reader, name string) error {
	w.outer = &errReader{r: r}
	w.expanded, w.capped = 0, nil
	w.at, w.atSize = nil, 0
	if f, ok := r.(interface {
		io.ReaderAt
		Stat() (os.FileInfo, error)
	}); ok {
		if st, err := f.Stat(); err == nil {
			w.at, w.atSize = f, st.Size()
		}
	}
	defer func() { w.at = nil }()
	return w.file(w.outer, name, 0, -1)
}

// gitObject is compiled on first use: lint shares the ENTRYPOINT binary,
// whose start-up pays for every package-level initialiser.
var gitObject = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(^|/)objects/[0-9a-f]{2}/[0-9a-f]{38,62}$`)
})

// file sniffs r and either opens it as an archive or scans its bytes.
func (w *Walker) file(r io.Reader, name string, depth int, size int64) error {
	var hb [512]byte
	n, err := io.ReadFull(r, hb[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return w.fail(name, err)
	}
	head := hb[:n]
	for _, ru := range w.eng.FileRules(name) {
		// The file is the secret: its first bytes stand for it (baseline
		// fingerprints, the public-values list), never shown.
		if ok, note := rules.CheckFile(ru, head); ok {
			w.OnMatch(Match{Path: name, Match: rules.Match{Rule: ru, Secret: rules.Secret(bytes.Clone(head)), Note: note}})
		}
	}
	body := io.MultiReader(bytes.NewReader(head), r)
	kind := sniff(head, name)
	if archive[kind] && depth+1 > w.Limits.MaxDepth {
		w.skip(Skip{Path: name, Reason: fmt.Sprintf("%s nested %d deep, over the limit of %d; its content was not read", kind, depth+1, w.Limits.MaxDepth), Incomplete: true})
		_, err := io.Copy(io.Discard, body)
		return w.fail(name, err)
	}
	inner := func(ext ...string) string {
		n := name
		for _, e := range ext {
			n = strings.TrimSuffix(n, e)
		}
		return name + "!" + path.Base(n)
	}
	switch kind {
	case "tar archive":
		return w.nested(name, w.tar(body, name+"!", depth+1, false), body)
	case "gzip file":
		gz, err := gzip.NewReader(body)
		if err != nil {
			return w.nested(name, err, body)
		}
		return w.nested(name, w.file(w.bounded(gz, size), inner(".gz", ".tgz"), depth+1, -1), body)
	case "bzip2 file":
		return w.nested(name, w.file(w.bounded(bzip2.NewReader(body), size), inner(".bz2"), depth+1, -1), body)
	case "zstd file":
		zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return w.nested(name, err, body)
		}
		defer zr.Close()
		return w.nested(name, w.file(w.bounded(zr, size), inner(".zst"), depth+1, -1), body)
	case "zip archive":
		return w.zip(body, name, depth, size)
	case "xz file":
		xr, err := xz.NewReader(body)
		if err != nil {
			return w.nested(name, err, body)
		}
		return w.nested(name, w.file(w.bounded(xr, size), inner(".xz", ".txz"), depth+1, -1), body)
	case "git object":
		zr, err := zlib.NewReader(body)
		if err == nil {
			err = w.sc.Scan(w.bounded(zr, size), name, w.emit(name+" (git object)"))
			zr.Close()
			return w.nested(name, err, body)
		}
	case "git pack":
		return w.nested(name, w.pack(body, name), body)
	}
	if err := w.sc.Scan(body, name, w.emit(name)); err != nil {
		return w.fail(name, err)
	}
	return nil
}

// OuterPath is the file of the layer (or directory) a match path points
// into: "app.jar!BOOT-INF/x.yml" -> "app.jar", "p.pack (object 3)" ->
// "p.pack". Whiteouts, allow rules, SARIF locations and .dockerignore lines
// work on it.
func OuterPath(p string) string {
	if i := strings.IndexByte(p, '!'); i >= 0 {
		p = p[:i]
	}
	p = strings.TrimSuffix(p, " (git object)")
	if i := strings.LastIndex(p, " (object "); i >= 0 && strings.HasSuffix(p, ")") {
		p = p[:i]
	}
	return p
}

func (w *Walker) emit(name string) func(rules.Match) {
	return func(m rules.Match) { w.OnMatch(Match{Path: name, Match: m}) }
}

func (w *Walker) skip(s Skip) {
	if w.OnSkip != nil {
		w.OnSkip(s)
	}
}

// fail turns a read error into the walk's error when it came from the
// outermost stream (the layer is broken), and into an incomplete skip when
// only a nested file was bad.
func (w *Walker) fail(name string, err error) error {
	if err == nil {
		return nil
	}
	if w.outer.err != nil {
		return fmt.Errorf("reading %s: %w", name, w.outer.err)
	}
	w.skip(Skip{Path: name, Reason: "unreadable: " + err.Error(), Incomplete: true})
	return nil
}

// nested finishes a nested archive: a decoding error is an incomplete skip
// of that file (unless the outer stream broke), and the rest of the file is
// drained so the outer walk can go on.
func (w *Walker) nested(name string, err error, body io.Reader) error {
	if err != nil {
		if w.outer.err != nil {
			return fmt.Errorf("reading %s: %w", name, w.outer.err)
		}
		w.skip(Skip{Path: name, Reason: "corrupt archive, read in part: " + err.Error(), Incomplete: true})
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return w.fail(name, err)
	}
	return nil
}

// zip opens a zip/jar: in place when it is the file on disk, else from an
// in-memory copy, which all nested zips together keep under MaxZipBytes.
func (w *Walker) zip(body io.Reader, name string, depth int, size int64) error {
	if depth == 0 && w.at != nil {
		zr, err := zip.NewReader(w.at, w.atSize)
		if err == nil {
			return w.zipMembers(zr, name, depth)
		}
	}
	limit := w.Limits.MaxZipBytes - w.zipHeld
	var bb bytes.Buffer
	if size > 0 && size <= limit {
		bb.Grow(int(size) + 1)
	}
	if _, err := bb.ReadFrom(io.LimitReader(body, limit+1)); err != nil {
		return w.fail(name, err)
	}
	buf := bb.Bytes()
	w.zipHeld += int64(cap(buf))
	defer func() { w.zipHeld -= int64(cap(buf)) }()
	if int64(len(buf)) > limit {
		w.skip(Skip{Path: name, Reason: fmt.Sprintf("zip archive over the %d MiB in-memory limit (--max-zip-size, shared by nested zips): members not opened; raw bytes scanned", w.Limits.MaxZipBytes>>20), Incomplete: true})
		if err := w.sc.Scan(io.MultiReader(bytes.NewReader(buf), body), name, w.emit(name)); err != nil {
			return w.fail(name, err)
		}
		return nil
	}
	zr, err := zip.NewReader(bytes.NewReader(buf), int64(len(buf)))
	if err != nil {
		w.skip(Skip{Path: name, Reason: "corrupt zip archive: " + err.Error() + "; raw bytes scanned", Incomplete: true})
		return w.fail(name, w.sc.Scan(bytes.NewReader(buf), name, w.emit(name)))
	}
	return w.zipMembers(zr, name, depth)
}

func (w *Walker) zipMembers(zr *zip.Reader, name string, depth int) error {
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		if w.capped != nil {
			return nil // reported once where the bound was hit
		}
		rc, err := f.Open()
		if err != nil {
			w.skip(Skip{Path: name + "!" + f.Name, Reason: "unreadable zip member: " + err.Error(), Incomplete: true})
			continue
		}
		err = w.file(w.bounded(rc, int64(f.CompressedSize64)), name+"!"+CleanName(f.Name), depth+1, -1)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// pack scans the objects of a git packfile: each entry is a zlib stream
// (whole objects, or deltas whose inserted bytes still hold new text).
func (w *Walker) pack(r io.Reader, name string) error {
	br := bufio.NewReader(r)
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return err
	}
	count := int(hdr[8])<<24 | int(hdr[9])<<16 | int(hdr[10])<<8 | int(hdr[11])
	for i := 0; i < count; i++ {
		c, err := br.ReadByte()
		if err != nil {
			return err
		}
		typ := (c >> 4) & 7
		for c&0x80 != 0 {
			if c, err = br.ReadByte(); err != nil {
				return err
			}
		}
		switch typ {
		case 6: // OFS_DELTA: varint offset
			for {
				if c, err = br.ReadByte(); err != nil {
					return err
				}
				if c&0x80 == 0 {
					break
				}
			}
		case 7: // REF_DELTA: 20-byte base
			if _, err := br.Discard(20); err != nil {
				return err
			}
		}
		// bufio.Reader is an io.ByteReader, so flate reads no further than
		// the end of this object's stream.
		zr, err := zlib.NewReader(br)
		if err != nil {
			return err
		}
		err = w.sc.Scan(zr, name, w.emit(fmt.Sprintf("%s (object %d)", name, i)))
		zr.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// errBomb stops a nested stream that expands far beyond its compressed
// size (an archive bomb): the rest is reported as not read.
var errBomb = errors.New("decompresses to over 200 times its size: possible archive bomb, rest not read")

// bounded limits what a nested decompressor may produce: 200 times the
// compressed size (size < 0: unknown), and at least MinExpandBytes.
func (w *Walker) bounded(r io.Reader, size int64) io.Reader {
	return &bombReader{r: r, left: max(w.Limits.MinExpandBytes, 200*size), w: w}
}

type bombReader struct {
	r    io.Reader
	left int64
	w    *Walker
}

func (b *bombReader) Read(p []byte) (int, error) {
	if b.w.capped != nil {
		return 0, b.w.capped
	}
	if b.left <= 0 {
		return 0, errBomb
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	l := &b.w.Limits
	if b.w.expanded += int64(n); l.MaxFileExpandBytes > 0 && b.w.expanded > l.MaxFileExpandBytes {
		b.w.capped = fmt.Errorf("expands to over %d MiB (--max-expand-file): possible archive bomb, rest not read", l.MaxFileExpandBytes>>20)
	} else if l.ScanExpand != nil && l.MaxScanExpandBytes > 0 && l.ScanExpand.Add(int64(n)) > l.MaxScanExpandBytes {
		b.w.capped = fmt.Errorf("the scan expanded over %d MiB (--max-expand-scan): rest not read", l.MaxScanExpandBytes>>20)
	}
	return n, err
}
