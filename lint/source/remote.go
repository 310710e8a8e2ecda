package source

import (
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RemoteOptions are added to every registry call (tests pass a transport).
var RemoteOptions []remote.Option

// openRemote reads a registry image or index with the Docker config's
// credentials (authn.DefaultKeychain). Compressed layer streams from
// go-containerregistry are digest-verified as they are read.
func openRemote(ctx context.Context, ref string) (*Target, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, &UsageError{fmt.Sprintf("%q is not an image reference: %v", ref, err)}
	}
	opts := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, RemoteOptions...)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return nil, err
	}
	t := &Target{Name: "docker://" + ref, Close: func() error { return nil }}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, d := range im.Manifests {
			if !d.MediaType.IsImage() || (d.Platform != nil && d.Platform.OS == "unknown") {
				continue
			}
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			ci, err := fromV1(ref, img, d.Platform, merge(im.Annotations, d.Annotations))
			if err != nil {
				return nil, err
			}
			t.Images = append(t.Images, ci)
		}
		return t, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	ci, err := fromV1(ref, img, nil, nil)
	if err != nil {
		return nil, err
	}
	t.Images = []Image{ci}
	return t, nil
}

func fromV1(ref string, img v1.Image, p *v1.Platform, ann map[string]string) (Image, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return Image{}, fmt.Errorf("%s: image config: %w", ref, err)
	}
	out := Image{Name: ref, Platform: platformOf(cfg, p), Config: cfg, Annotations: ann}
	if m, err := img.Manifest(); err == nil && m != nil {
		out.Annotations = merge(ann, m.Annotations)
	}
	ls, err := img.Layers()
	if err != nil {
		return Image{}, fmt.Errorf("%s: layers: %w", ref, err)
	}
	for _, l := range ls {
		l := l
		var layer Layer
		if layer.DiffID, err = l.DiffID(); err != nil {
			return Image{}, err
		}
		if layer.Digest, err = l.Digest(); err != nil {
			return Image{}, err
		}
		layer.Open = func() (io.ReadCloser, error) { return l.Compressed() }
		layer.Size, _ = l.Size()
		out.Layers = append(out.Layers, layer)
	}
	return out, nil
}
