package source

import (
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

var ggcrLayerName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9a-f]{64})\.tar\.gz$`) })

// docker save's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func openDockerArchive(p string) (*Target, error) {
	if compressed(p) {
		// `docker save | gzip`: no random access, so read it as one
		// stream, like the Docker Engine's.
		return &Target{Name: KindDockerArchive + ":" + p, Stream: func() (io.ReadCloser, error) {
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			zr, err := gzip.NewReader(f)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			return struct {
				io.Reader
				io.Closer
			}{zr, f}, nil
		}, Close: func() error { return nil }}, nil
	}
	ts, err := openTarStore(p)
	if err != nil {
		return nil, err
	}
	t := &Target{Name: KindDockerArchive + ":" + p, Close: ts.f.Close}
	var ms []dockerManifest
	if err := readJSON(ts, "manifest.json", &ms); err != nil {
		ts.f.Close()
		return nil, fmt.Errorf("%s: not a docker-archive (docker save output): %w", p, err)
	}
	for _, m := range ms {
		cfg, err := readConfig(ts, m.Config)
		if err != nil {
			ts.f.Close()
			return nil, err
		}
		name := p
		if len(m.RepoTags) > 0 {
			name = m.RepoTags[0]
		}
		img := Image{Name: name, Platform: platformOf(cfg, nil), Config: cfg}
		for i, l := range m.Layers {
			layer := Layer{Open: opener(ts, l), Size: ts.entries[path.Clean("/"+l)][1]}
			if i < len(cfg.RootFS.DiffIDs) {
				layer.DiffID = cfg.RootFS.DiffIDs[i]
			}
			// docker 25+ stores layers as blobs/sha256/HEX: the name is
			// the blob's digest.
			// go-containerregistry's writer names them HEX.tar.gz.
			if h, err := v1.NewHash(strings.Replace(strings.TrimPrefix(l, "blobs/"), "/", ":", 1)); err == nil {
				layer.Digest = h
			} else if m := ggcrLayerName().FindStringSubmatch(l); m != nil {
				layer.Digest = v1.Hash{Algorithm: "sha256", Hex: m[1]}
			}
			img.Layers = append(img.Layers, layer)
		}
		t.Images = append(t.Images, img)
	}
	if len(t.Images) == 0 {
		ts.f.Close()
		return nil, fmt.Errorf("%s: manifest.json lists no image", p)
	}
	return t, nil
}

// compressed reports whether the file at p starts with the gzip magic.
func compressed(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [2]byte
	_, err = io.ReadFull(f, b[:])
	return err == nil && b[0] == 0x1f && b[1] == 0x8b
}

func opener(s store, name string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return s.open(name) }
}

func openOCIDir(spec string) (*Target, error) {
	dir, tag := spec, ""
	if i := strings.LastIndexByte(spec, ':'); i > 0 {
		if _, err := os.Stat(spec); err != nil {
			dir, tag = spec[:i], spec[i+1:]
		}
	}
	t := &Target{Name: KindOCI + ":" + spec, Close: func() error { return nil }}
	if err := readOCILayout(dirStore(dir), dir, tag, t); err != nil {
		return nil, err
	}
	return t, nil
}

func openOCIArchive(spec string) (*Target, error) {
	p, tag := spec, ""
	if i := strings.LastIndexByte(spec, ':'); i > 0 {
		if _, err := os.Stat(spec); err != nil {
			p, tag = spec[:i], spec[i+1:]
		}
	}
	ts, err := openTarStore(p)
	if err != nil {
		return nil, err
	}
	t := &Target{Name: KindOCIArchive + ":" + spec, Close: ts.f.Close}
	if err := readOCILayout(ts, p, tag, t); err != nil {
		ts.f.Close()
		return nil, err
	}
	return t, nil
}

const refNameAnnotation = "org.opencontainers.image.ref.name"

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// readOCILayout walks index.json, nested indexes included, and adds every
// image (every platform) whose ref name matches tag ("" for all).
func readOCILayout(s store, where, tag string, t *Target) error {
	var idx v1.IndexManifest
	if err := readJSON(s, "index.json", &idx); err != nil {
		return fmt.Errorf("%s: not an OCI layout: %w", where, err)
	}
	var walk func(idx *v1.IndexManifest, inherited map[string]string, depth int) error
	walk = func(idx *v1.IndexManifest, inherited map[string]string, depth int) error {
		if depth > 4 {
			return fmt.Errorf("%s: indexes nested deeper than 4", where)
		}
		for _, d := range idx.Manifests {
			ann := merge(inherited, idx.Annotations, d.Annotations)
			if depth == 0 && tag != "" && d.Annotations[refNameAnnotation] != tag {
				continue
			}
			switch d.MediaType {
			case types.OCIImageIndex, types.DockerManifestList:
				var sub v1.IndexManifest
				if err := readJSON(s, blobPath(d.Digest), &sub); err != nil {
					return err
				}
				if err := walk(&sub, ann, depth+1); err != nil {
					return err
				}
			default:
				var m v1.Manifest
				if err := readJSON(s, blobPath(d.Digest), &m); err != nil {
					return err
				}
				if m.Config.MediaType == types.OCIManifestSchema1 || strings.Contains(string(m.Config.MediaType), "attestation") {
					continue
				}
				if d.Platform != nil && d.Platform.OS == "unknown" {
					continue // BuildKit attestation manifests
				}
				cfg, err := readConfig(s, blobPath(m.Config.Digest))
				if err != nil {
					return err
				}
				name := where
				if n := d.Annotations[refNameAnnotation]; n != "" {
					name += ":" + n
				}
				img := Image{Name: name, Platform: platformOf(cfg, d.Platform), Config: cfg, Annotations: merge(ann, m.Annotations)}
				for i, l := range m.Layers {
					layer := Layer{Digest: l.Digest, Size: l.Size, Open: opener(s, blobPath(l.Digest))}
					if i < len(cfg.RootFS.DiffIDs) {
						layer.DiffID = cfg.RootFS.DiffIDs[i]
					}
					img.Layers = append(img.Layers, layer)
				}
				t.Images = append(t.Images, img)
			}
		}
		return nil
	}
	if err := walk(&idx, nil, 0); err != nil {
		return err
	}
	if len(t.Images) == 0 {
		if tag != "" {
			return fmt.Errorf("%s: no image tagged %q in index.json", where, tag)
		}
		return fmt.Errorf("%s: index.json lists no image", where)
	}
	return nil
}

func merge(ms ...map[string]string) map[string]string {
	var out map[string]string
	for _, m := range ms {
		for k, v := range m {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// openSkopeoDir reads skopeo's dir: format: manifest.json plus blobs named
// by their hex digest.
func openSkopeoDir(dir string) (*Target, error) {
	s := dirStore(dir)
	var m v1.Manifest
	if err := readJSON(s, "manifest.json", &m); err != nil {
		return nil, fmt.Errorf("%s: not a skopeo dir: image (for a plain directory use fs:%s): %w", dir, dir, err)
	}
	cfg, err := readConfig(s, m.Config.Digest.Hex)
	if err != nil {
		return nil, err
	}
	img := Image{Name: dir, Platform: platformOf(cfg, nil), Config: cfg, Annotations: m.Annotations}
	for i, l := range m.Layers {
		layer := Layer{Digest: l.Digest, Size: l.Size, Open: opener(s, l.Digest.Hex)}
		if i < len(cfg.RootFS.DiffIDs) {
			layer.DiffID = cfg.RootFS.DiffIDs[i]
		}
		img.Layers = append(img.Layers, layer)
	}
	return &Target{Name: KindDir + ":" + dir, Images: []Image{img}, Close: func() error { return nil }}, nil
}
