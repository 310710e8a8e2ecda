package walk_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
	"github.com/secretbroker/secretbroker/lint/rules"
	"github.com/secretbroker/secretbroker/lint/walk"
)

// An xz file is decompressed and its content scanned.
func TestXZ(t *testing.T) {
	var buf bytes.Buffer
	xw, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(xw, "token = "+testsecret.GitHubPAT()+"\n")
	_ = xw.Close()
	res, err := run(t, tarOf(entry{name: "var/backup/app.conf.xz", body: buf.String()}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.matches) == 0 || res.matches[0].Path != "var/backup/app.conf.xz!app.conf" {
		t.Fatalf("matches %+v skips %+v", res.matches, res.skips)
	}
	if len(res.skips) > 0 {
		t.Fatalf("skips: %+v", res.skips)
	}
}

func zipOf(t *testing.T, members map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, b := range members {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(b)
	}
	_ = zw.Close()
	return buf.Bytes()
}

// A 42.zip-style bomb (nested zips, 16 per level, over zero-filled files)
// stops at the per-file bound, reported as not read, once per level rather
// than once per member. "Within seconds" is asserted as work, not time: the
// bytes every decompressor produced stay near the bound (256 MiB of the
// bomb's 256 GiB), whatever the machine's load.
func TestZipBomb(t *testing.T) {
	zeros := make([]byte, 64<<20)
	base := zipOf(t, map[string][]byte{"zeros.bin": zeros})
	lvl := base
	for range 3 {
		m := map[string][]byte{}
		for i := range 16 {
			m[fmt.Sprintf("%x.zip", i)] = lvl
		}
		lvl = zipOf(t, m) // 16^3 * 64 MiB = 256 GiB expanded
	}
	e, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	var skips []walk.Skip
	w := walk.New(e)
	w.Limits.MaxFileExpandBytes = 256 << 20
	var expanded atomic.Int64
	w.Limits.ScanExpand, w.Limits.MaxScanExpandBytes = &expanded, 1<<40
	w.OnMatch = func(walk.Match) {}
	w.OnSkip = func(s walk.Skip) { skips = append(skips, s) }
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	_ = tw.WriteHeader(&tar.Header{Name: "42.zip", Mode: 0o644, Size: int64(len(lvl)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(lvl)
	_ = tw.Close()
	if err := w.Layer(&layer); err != nil {
		t.Fatal(err)
	}
	t.Logf("expanded %d MiB", expanded.Load()>>20)
	if n := expanded.Load(); n > 2*w.Limits.MaxFileExpandBytes {
		t.Errorf("the bomb expanded %d MiB, over twice the %d MiB bound", n>>20, w.Limits.MaxFileExpandBytes>>20)
	}
	incomplete := false
	for _, s := range skips {
		incomplete = incomplete || s.Incomplete && strings.Contains(s.Reason, "--max-expand-file")
	}
	if !incomplete || len(skips) > 10 {
		t.Fatalf("skips (%d): %+v", len(skips), skips)
	}
}
