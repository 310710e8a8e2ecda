package scan

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/secretbroker/secretbroker/lint/source"
	"github.com/secretbroker/secretbroker/lint/walk"
)

// maxMetadata bounds the JSON documents (manifests, configs) kept in memory
// while a `docker save` stream is read.
const maxMetadata = 8 << 20

// stream reads a target that arrives as one `docker save` stream (the
// Docker Engine): the stream cannot be reopened or read out of order, and
// manifest.json may come last, so every blob is walked as it passes (small
// JSON documents are kept) and the stream's manifest then says which blob is
// which layer of which image. Memory stays bounded; nothing touches disk.
func (s *Scanner) stream(ctx context.Context, t *source.Target) {
	rc, err := t.Stream()
	if err != nil {
		s.Fail("%s: %v", t.Name, err)
		return
	}
	defer rc.Close()
	rc = struct {
		io.Reader
		io.Closer
	}{ctxReader{ctx, rc}, rc}
	docs := map[string][]byte{}
	blobs := map[string]*layerJob{} // by member name
	w := walk.New(s.Engine)
	w.Limits = s.Limits
	tr := tar.NewReader(rc)
	for {
		if err := ctx.Err(); err != nil {
			s.Fail("%s: %v", t.Name, err)
			return
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.Fail("%s: reading the image stream: %v", t.Name, err)
			return
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue
		}
		name := path.Clean("/" + hdr.Name)
		br := bytes.NewReader(nil)
		var head [1]byte
		n, _ := io.ReadFull(tr, head[:])
		if n == 1 && (head[0] == '{' || head[0] == '[') && hdr.Size <= maxMetadata {
			rest, err := io.ReadAll(tr)
			if err != nil {
				s.Fail("%s: reading %s: %v", t.Name, name, err)
				return
			}
			docs[name] = append(head[:1:1], rest...)
			continue
		}
		br.Reset(head[:n])
		j := &layerJob{layer: source.Layer{}}
		s.walkLayer(t.Name, w, j, io.MultiReader(br, tr))
		blobs[name] = j
	}
	var ms []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(docs["/manifest.json"], &ms); err != nil || len(ms) == 0 {
		s.Fail("%s: the image stream has no usable manifest.json (%v)", t.Name, err)
		return
	}
	jobs := map[string]*layerJob{}
	for _, m := range ms {
		raw, ok := docs[path.Clean("/"+m.Config)]
		if !ok {
			s.Fail("%s: config %s missing from the image stream", t.Name, m.Config)
			continue
		}
		cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
		if err != nil {
			s.Fail("%s: config %s: %v", t.Name, m.Config, err)
			continue
		}
		name := t.Name
		if len(m.RepoTags) > 0 {
			name = m.RepoTags[0]
		}
		img := source.Image{Name: name, Config: cfg}
		if cfg.OS != "" {
			img.Platform = (&v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}).String()
		}
		for i, lp := range m.Layers {
			j := blobs[path.Clean("/"+lp)]
			if j == nil {
				s.Fail("%s: layer %s missing from the image stream", t.Name, lp)
				continue
			}
			// The stream gives no blob digests: a layer is named by the
			// diff_id computed while reading, which must match the config.
			l := source.Layer{}
			l.DiffID, _ = v1.NewHash(j.diffDigest)
			if i >= len(cfg.RootFS.DiffIDs) {
				j.err = fmt.Errorf("the config lists %d diff_ids for %d layers", len(cfg.RootFS.DiffIDs), len(m.Layers))
			} else if j.err == nil && cfg.RootFS.DiffIDs[i].String() != j.diffDigest {
				j.err = fmt.Errorf("diff_id mismatch: the config says %s, the layer hashes to %s", cfg.RootFS.DiffIDs[i], j.diffDigest)
			}
			if j.err != nil && i < len(cfg.RootFS.DiffIDs) {
				l.DiffID = cfg.RootFS.DiffIDs[i]
			}
			j.layer = l
			jobs[l.Key()] = j
			img.Layers = append(img.Layers, l)
		}
		t.Images = append(t.Images, img)
	}
	s.report(t, jobs)
}
