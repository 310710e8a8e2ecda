package walk_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
	"github.com/secretbroker/secretbroker/lint/rules"
	"github.com/secretbroker/secretbroker/lint/walk"
)

type result struct {
	matches []walk.Match
	skips   []walk.Skip
	names   []string
}

func run(t testing.TB, layer []byte) (*result, error) {
	t.Helper()
	e, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	res := &result{}
	w := walk.New(e)
	w.OnMatch = func(m walk.Match) { res.matches = append(res.matches, m) }
	w.OnSkip = func(s walk.Skip) { res.skips = append(res.skips, s) }
	w.OnEntry = func(n string, _ *tar.Header) { res.names = append(res.names, n) }
	return res, w.Layer(bytes.NewReader(layer))
}

type entry struct {
	name, body, link string
	typ              byte
	size             int64 // declared size when > len(body)
}

func tarOf(es ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg, Linkname: e.link}
		if e.typ != 0 {
			h.Typeflag, h.Size = e.typ, 0
		}
		_ = tw.WriteHeader(h)
		_, _ = tw.Write([]byte(e.body))
	}
	_ = tw.Close()
	return buf.Bytes()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func TestBadInput(t *testing.T) {
	pat := testsecret.GitHubPAT()
	secret := entry{name: "app/token.txt", body: "t=" + pat + "\n"}
	nested := tarOf(secret)
	for i := 0; i < 50; i++ {
		nested = gz(tarOf(entry{name: "n.tar.gz", body: string(nested)}))
	}
	huge := tarOf(secret)
	// Declare a terabyte-sized entry, then end the stream.
	var hb bytes.Buffer
	tw := tar.NewWriter(&hb)
	_ = tw.WriteHeader(&tar.Header{Name: "big", Mode: 0o644, Size: 1 << 40, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("partial"))
	hugeDecl := hb.Bytes()
	good := gz(tarOf(secret))
	tests := []struct {
		name       string
		layer      []byte
		wantErr    string
		wantFinds  int
		incomplete bool
		wantName   string
	}{
		{name: "dotdot and absolute paths", layer: tarOf(entry{name: "../../etc/x", body: "t=" + pat}, entry{name: "/abs/y", body: "t=" + pat}), wantFinds: 2, wantName: "etc/x"},
		{name: "symlink loop", layer: tarOf(entry{name: "a", link: "b", typ: tar.TypeSymlink}, entry{name: "b", link: "a", typ: tar.TypeSymlink}, secret), wantFinds: 1},
		{name: "hardlink to missing file", layer: tarOf(entry{name: "h", link: "missing", typ: tar.TypeLink}, secret), wantFinds: 1},
		{name: "truncated gzip", layer: good[:len(good)/2], wantErr: "unexpected EOF"},
		{name: "corrupt gzip", layer: append(append([]byte{}, good[:12]...), bytes.Repeat([]byte{0xff}, 64)...), wantErr: "reading tar"},
		{name: "terabyte declared size", layer: append(huge[:len(huge)-1024], hugeDecl...), wantErr: "EOF"},
		{name: "nested 50 deep", layer: nested, incomplete: true},
		{name: "nested gzip ok", layer: gz(tarOf(entry{name: "x.tar.gz", body: string(good)})), wantFinds: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := run(t, tt.layer)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), pat) {
					t.Fatal("error leaks the secret")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.matches) != tt.wantFinds {
				t.Fatalf("%d matches, want %d", len(res.matches), tt.wantFinds)
			}
			inc := false
			for _, s := range res.skips {
				inc = inc || s.Incomplete
			}
			if inc != tt.incomplete {
				t.Fatalf("incomplete = %v, want %v (%v)", inc, tt.incomplete, res.skips)
			}
			if tt.wantName != "" && res.names[0] != tt.wantName {
				t.Fatalf("name %q, want %q", res.names[0], tt.wantName)
			}
		})
	}
}

// A small gzip file that expands past its budget is cut off and reported
// as incomplete, not decompressed for ever.
func TestArchiveBomb(t *testing.T) {
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
	_, _ = io.Copy(zw, &repeatReader{n: 64 << 20, b: 0})
	_ = zw.Close()
	e, _ := rules.Default()
	res := &result{}
	w := walk.New(e)
	w.Limits.MinExpandBytes = 1 << 20
	w.OnMatch = func(m walk.Match) { res.matches = append(res.matches, m) }
	w.OnSkip = func(s walk.Skip) { res.skips = append(res.skips, s) }
	if err := w.Layer(bytes.NewReader(tarOf(entry{name: "bomb.gz", body: zb.String()}))); err != nil {
		t.Fatal(err)
	}
	if len(res.skips) != 1 || !res.skips[0].Incomplete || !strings.Contains(res.skips[0].Reason, "archive bomb") {
		t.Fatalf("skips %+v", res.skips)
	}
}

// zeroes is an endless-looking reader of one byte value, so that a 1 GiB file
// is streamed without being held in memory.
type repeatReader struct {
	n int64
	b byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > r.n {
		n = r.n
	}
	for i := range p[:n] {
		p[i] = r.b
	}
	r.n -= n
	return int(n), nil
}

// A 1 GiB file with no newline streams through with bounded memory and the
// secret at its end is found.
func TestHugeLineFile(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	pat := testsecret.GitHubPAT()
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		tail := " " + pat + " "
		_ = tw.WriteHeader(&tar.Header{Name: "big.bin", Mode: 0o644, Size: size + int64(len(tail)), Typeflag: tar.TypeReg})
		_, _ = io.Copy(tw, &repeatReader{n: size, b: 'x'})
		_, _ = tw.Write([]byte(tail))
		_ = tw.Close()
		_ = pw.Close()
	}()
	e, _ := rules.Default()
	w := walk.New(e)
	var got []walk.Match
	w.OnMatch = func(m walk.Match) { got = append(got, m) }
	if err := w.Layer(pr); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Offset != size+1 {
		t.Fatalf("got %d matches", len(got))
	}
}

// Every container format the walker opens, each holding the same secret.
func TestFormats(t *testing.T) {
	pat := testsecret.GitHubPAT()
	body := "t=" + pat + "\n"
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	fw, _ := zw.Create("BOOT-INF/classes/application.yml")
	_, _ = fw.Write([]byte(body))
	_ = zw.Close()
	var zl bytes.Buffer
	zlw := zlib.NewWriter(&zl)
	_, _ = zlw.Write([]byte("blob 40\x00" + body))
	_ = zlw.Close()
	enc, _ := zstd.NewWriter(nil)
	zst := enc.EncodeAll(tarOf(entry{name: "z.txt", body: body}), nil)
	tests := []struct {
		name, wantPath string
		layer          []byte
	}{
		{"zstd layer", "z.txt", zst},
		{"plain tar layer", "p.txt", tarOf(entry{name: "p.txt", body: body})},
		{"jar in layer", "app.jar!BOOT-INF/classes/application.yml", tarOf(entry{name: "app.jar", body: zbuf.String()})},
		{"git loose object", "src/.git/objects/ab/" + strings.Repeat("c", 38) + " (git object)", tarOf(entry{name: "src/.git/objects/ab/" + strings.Repeat("c", 38), body: zl.String()})},
		{"gz file", "x.log.gz!x.log", tarOf(entry{name: "x.log.gz", body: string(gz([]byte(body)))})},
		{"zst file", "d.json.zst!d.json", tarOf(entry{name: "d.json.zst", body: string(enc.EncodeAll([]byte(body), nil))})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := run(t, tt.layer)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.matches) != 1 || res.matches[0].Path != tt.wantPath {
				var got []string
				for _, m := range res.matches {
					got = append(got, m.Path)
				}
				t.Fatalf("matches at %v, want %s", got, tt.wantPath)
			}
		})
	}
}

func FuzzLayer(f *testing.F) {
	f.Add(tarOf(entry{name: "a", body: "password = \"x1y2z3w4v5\""}))
	f.Add(gz(tarOf(entry{name: "b.zip", body: "PK\x03\x04junk"})))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	e, _ := rules.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		w := walk.New(e)
		w.Limits.MaxSparseBytes = 1 << 20
		w.OnMatch = func(walk.Match) {}
		_ = w.Layer(bytes.NewReader(data))
	})
}

func TestOuterPath(t *testing.T) {
	for in, want := range map[string]string{
		"app.jar!BOOT-INF/a.yml":                "app.jar",
		"a.tgz!a.tar!x/y":                       "a.tgz",
		"r/.git/objects/ab/cd (git object)":     "r/.git/objects/ab/cd",
		"r/.git/objects/pack/p.pack (object 3)": "r/.git/objects/pack/p.pack",
		"docs/notes (draft)":                    "docs/notes (draft)",
	} {
		if got := walk.OuterPath(in); got != want {
			t.Errorf("OuterPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// A JKS keystore is flagged when it holds a private key entry, not when it
// is a truststore of certificates.
func TestKeystore(t *testing.T) {
	jks := func(tag byte) string {
		return string([]byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, tag, 0, 5, 'a', 'l', 'i', 'a', 's'})
	}
	for _, tt := range []struct {
		tag  byte
		want int
	}{{1, 1}, {2, 0}} {
		res, err := run(t, tarOf(entry{name: "app/keys.jks", body: jks(tt.tag)}))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.matches) != tt.want {
			t.Errorf("tag %d: %d matches, want %d", tt.tag, len(res.matches), tt.want)
		}
	}
}

// Nested zips share one in-memory budget: a zip inside a zip is not opened
// when the outer copy already uses it, and says so.
func TestZipBudget(t *testing.T) {
	pat := testsecret.GitHubPAT()
	mk := func(name, body string) []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		fw, _ := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		_, _ = fw.Write([]byte(body))
		_ = zw.Close()
		return b.Bytes()
	}
	inner := mk("conf/app.properties", "token="+pat+"\n"+strings.Repeat("x", 3000))
	outer := mk("lib/inner.jar", string(inner))
	e, _ := rules.Default()
	w := walk.New(e)
	w.Limits.MaxZipBytes = int64(len(outer)) + int64(len(inner))/2
	var got []walk.Match
	var skips []walk.Skip
	w.OnMatch = func(m walk.Match) { got = append(got, m) }
	w.OnSkip = func(s walk.Skip) { skips = append(skips, s) }
	if err := w.Layer(bytes.NewReader(tarOf(entry{name: "app.jar", body: string(outer)}))); err != nil {
		t.Fatal(err)
	}
	// The inner zip is over budget: its raw (stored) bytes are still scanned.
	found := false
	for _, m := range got {
		found = found || m.Rule.ID == "github-pat"
	}
	if len(skips) != 1 || !skips[0].Incomplete || !found {
		t.Fatalf("skips %+v, %d matches", skips, len(got))
	}
}
