// Package testimage builds small images for tests with go-containerregistry:
// layers from in-memory files (whiteouts included), a config with Env,
// Labels and history, written as docker-archive, OCI layout or OCI archive.
package testimage

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one tar entry; Whiteout makes a ".wh." entry for Name.
type File struct {
	Name     string
	Body     string
	Whiteout bool
	Typeflag byte
	Linkname string
}

// Tar returns a tar stream of files.
func Tar(files ...File) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		n := f.Name
		if f.Whiteout {
			n = filepath.Join(filepath.Dir(n), ".wh."+filepath.Base(n))
		}
		h := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(f.Body)), Typeflag: tar.TypeReg}
		if f.Typeflag != 0 {
			h.Typeflag, h.Linkname, h.Size = f.Typeflag, f.Linkname, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if h.Size > 0 {
			_, _ = tw.Write([]byte(f.Body))
		}
	}
	_ = tw.Close()
	return buf.Bytes()
}

// Layer makes a gzip layer from a tar stream.
func Layer(tarBytes []byte) v1.Layer {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	})
	if err != nil {
		panic(err)
	}
	return l
}

// Image stacks layers (each with a history step) and applies cfg.
func Image(cfg v1.Config, layers ...[]File) v1.Image {
	img := empty.Image
	for i, fs := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:   Layer(Tar(fs...)),
			History: v1.History{CreatedBy: "COPY layer" + string(rune('0'+i)) + " /"},
		})
		if err != nil {
			panic(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		panic(err)
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		panic(err)
	}
	return img
}

// WithHistory appends an empty-layer history step (e.g. BuildKit's record
// of build args).
func WithHistory(img v1.Image, createdBy string) v1.Image {
	cf, err := img.ConfigFile()
	if err != nil {
		panic(err)
	}
	cf = cf.DeepCopy()
	cf.History = append(cf.History, v1.History{CreatedBy: createdBy, EmptyLayer: true})
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		panic(err)
	}
	return img
}

// DockerArchive writes img as docker save output.
func DockerArchive(path string, img v1.Image) error {
	tag, _ := name.NewTag("test/image:latest")
	return tarball.WriteToFile(path, tag, img)
}

// OCILayout writes img into an OCI layout directory.
func OCILayout(dir string, img v1.Image) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img)
}

// OCIArchive writes an OCI layout, then tars it to path.
func OCIArchive(path string, img v1.Image) error {
	dir, err := os.MkdirTemp("", "ocilayout")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := OCILayout(dir, img); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		return err
	}
	return tw.Close()
}
