// Command lintbench is the benchmark driver for bench/lint.sh: `lintbench gen
// DIR` writes a 1 GiB, 6-layer gzip OCI layout with planted secrets;
// `lintbench floor BLOB` decompresses one gzip blob the way lint does (the
// same decompressor, reader and buffer sizes) and discards it, which is the
// honest floor for lint's own CPU; any other arguments run `inject lint`
// (the same cobra command the main CLI wires).
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/klauspost/compress/gzip"
	"github.com/spf13/cobra"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
	"github.com/secretbroker/secretbroker/lint/lintcmd"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "gen" {
		if err := gen(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "floor" {
		if err := floor(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if p := os.Getenv("LINTBENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			code := run()
			pprof.StopCPUProfile()
			os.Exit(code)
		}
	}
	os.Exit(run())
}

func run() int {
	root := &cobra.Command{Use: "inject", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(lintcmd.Command())
	err := root.Execute()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return lintcmd.ExitCode(err)
}

// floor decompresses a gzip blob as walk.Layer does (klauspost/compress
// gzip over a 64 KiB bufio.Reader) into a buffer the size of the rule
// scanner's, and drops the bytes.
func floor(blob string) error {
	f, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 64<<10))
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20+64<<10+1<<10)
	for {
		_, err := zr.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

const (
	layers     = 6
	layerBytes = 1 << 30 / layers
)

var words = []string{"info", "request", "served", "GET", "/api/v1/items", "200", "user", "cache", "miss", "latency", "ms", "config", "loaded", "module", "import", "function", "return", "value", "error", "nil", "package", "main"}

// gen writes the image. Content per layer: log- and source-like text lines
// (compressible) and random binary blobs (not), in files of 64 KiB-4 MiB.
func gen(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	planted := []string{testsecret.GitHubPAT(), testsecret.AWSKeyID(), testsecret.Slack(), testsecret.Vault()}
	rng := rand.New(rand.NewPCG(1, 2))
	var ls []v1.Descriptor
	var diffIDs []v1.Hash
	for l := 0; l < layers; l++ {
		d, diff, err := writeLayer(dir, rng, l, planted)
		if err != nil {
			return err
		}
		ls = append(ls, d)
		diffIDs = append(diffIDs, diff)
	}
	cfg := v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers", DiffIDs: diffIDs}}
	cd, err := writeJSON(dir, cfg)
	if err != nil {
		return err
	}
	cd.MediaType = types.OCIConfigJSON
	md, err := writeJSON(dir, v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cd, Layers: ls})
	if err != nil {
		return err
	}
	md.MediaType = types.OCIManifestSchema1
	idx, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{md}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	fmt.Printf("planted %d secrets\n", len(planted))
	return nil
}

func writeLayer(dir string, rng *rand.Rand, l int, planted []string) (v1.Descriptor, v1.Hash, error) {
	tmp, err := os.CreateTemp(dir, "layer")
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	defer os.Remove(tmp.Name())
	blob, diff := sha256.New(), sha256.New()
	zw, _ := gzip.NewWriterLevel(io.MultiWriter(tmp, blob), gzip.DefaultCompression)
	tw := tar.NewWriter(io.MultiWriter(zw, diff))
	written := 0
	for i := 0; written < layerBytes; i++ {
		size := 64<<10 + rng.IntN(4<<20)
		var body bytes.Buffer
		binary := i%3 == 2
		for body.Len() < size {
			if binary {
				var b [4096]byte
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
				body.Write(b[:])
				continue
			}
			for w := 0; w < 12; w++ {
				body.WriteString(words[rng.IntN(len(words))])
				body.WriteByte(' ')
			}
			fmt.Fprintf(&body, "%d\n", rng.IntN(1e6))
		}
		if i == 7 && l < len(planted) {
			fmt.Fprintf(&body, "\nsecret = %s\n", planted[l])
		}
		name := fmt.Sprintf("data/l%d/f%05d.%s", l, i, map[bool]string{true: "bin", false: "log"}[binary])
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(body.Len()), Typeflag: tar.TypeReg}); err != nil {
			return v1.Descriptor{}, v1.Hash{}, err
		}
		if _, err := tw.Write(body.Bytes()); err != nil {
			return v1.Descriptor{}, v1.Hash{}, err
		}
		written += body.Len()
	}
	if err := tw.Close(); err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	if err := zw.Close(); err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	st, _ := tmp.Stat()
	tmp.Close()
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(blob.Sum(nil))}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, "blobs", "sha256", h.Hex)); err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	return v1.Descriptor{MediaType: types.OCILayer, Size: st.Size(), Digest: h},
		v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diff.Sum(nil))}, nil
}

func writeJSON(dir string, v any) (v1.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return v1.Descriptor{}, err
	}
	sum := sha256.Sum256(b)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	return v1.Descriptor{Size: int64(len(b)), Digest: h}, os.WriteFile(filepath.Join(dir, "blobs", "sha256", h.Hex), b, 0o644)
}
