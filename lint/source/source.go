// Package source turns a target name ("docker-archive:app.tar",
// "oci:dir:tag", "docker://ghcr.io/x/y", ...) into images whose layers can be
// opened as raw blob streams. Naming follows skopeo. Formats on disk (docker
// save tarballs, OCI layouts and archives, skopeo dir:) are read through a
// small blob store so that layers open in parallel straight from the file,
// without extraction; registries and the Docker Engine go through
// go-containerregistry.
package source

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Layer is one layer blob of an image.
type Layer struct {
	// Digest is the digest of the bytes Open returns, when known; DiffID the
	// digest of the uncompressed tar. The scanner verifies whichever it can.
	Digest v1.Hash
	DiffID v1.Hash
	Open   func() (io.ReadCloser, error)
	// Size is the stored (compressed) size from the manifest, 0 if unknown;
	// it only feeds the progress line's ETA.
	Size int64
}

// Key identifies a layer across the images of one target, so that a layer
// shared by several platforms is read once.
func (l Layer) Key() string {
	if l.Digest.Hex != "" {
		return l.Digest.String()
	}
	return "diffid:" + l.DiffID.String()
}

// Image is one image (one platform of an index).
type Image struct {
	Name        string // reference or file name, plus platform for an index
	Platform    string
	Config      *v1.ConfigFile
	Annotations map[string]string
	Layers      []Layer
}

// Target is what a target name resolved to.
type Target struct {
	Name   string
	Images []Image
	// Stream, when set, is the one way to read the target: a `docker save`
	// stream (the Docker Engine) that cannot be reopened or read out of
	// order. Images is then filled in by the scanner from the stream.
	Stream func() (io.ReadCloser, error)
	Close  func() error
}

// Kind names of targets.
const (
	KindDockerArchive = "docker-archive"
	KindOCI           = "oci"
	KindOCIArchive    = "oci-archive"
	KindDaemon        = "docker-daemon"
	KindRegistry      = "docker"
	KindDir           = "dir"
	KindFS            = "fs"
	KindDockerfile    = "dockerfile"
)

// Split parses "KIND:REST". A name with no known kind is a bare reference.
func Split(target string) (kind, rest string) {
	if strings.HasPrefix(target, "docker://") {
		return KindRegistry, strings.TrimPrefix(target, "docker://")
	}
	if i := strings.IndexByte(target, ':'); i > 0 {
		switch k := target[:i]; k {
		case KindDockerArchive, KindOCI, KindOCIArchive, KindDaemon, KindDir, KindFS, KindDockerfile:
			return k, target[i+1:]
		}
	}
	// An existing local path is a directory or file to scan: nothing
	// local is ever sent to a registry.
	if _, err := os.Lstat(target); err == nil {
		return KindFS, target
	}
	return "", target
}

// Transports lists the target prefixes, as an error names them.
const Transports = "docker-archive:, oci:, oci-archive:, docker-daemon:, docker://, dir:, fs:, dockerfile:"

// CheckTransport reports a mistyped transport ("fz:/tmp/x", "oci-archiv:img.tar"):
// a word before ':' that names no transport, followed by a path rather
// than a tag or a registry port.
func CheckTransport(target string) error {
	kind, _ := Split(target)
	if kind != "" {
		return nil
	}
	i := strings.IndexByte(target, ':')
	if i <= 0 {
		return nil
	}
	word, rest := target[:i], target[i+1:]
	if strings.ContainsAny(word, "/.") || !(strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, "~") || rest == "") {
		return nil
	}
	return &UsageError{fmt.Sprintf("target %q: unknown transport %q; the transports are %s (or an image reference, or a local path)", target, word+":", Transports)}
}

// Open resolves an image target. fs: and dockerfile: targets are not images;
// callers handle them before calling Open.
func Open(ctx context.Context, target string) (*Target, error) {
	kind, rest := Split(target)
	if rest == "" {
		return nil, &UsageError{fmt.Sprintf("target %q names no path or reference", target)}
	}
	switch kind {
	case KindDockerArchive:
		return openDockerArchive(rest)
	case KindOCI:
		return openOCIDir(rest)
	case KindOCIArchive:
		return openOCIArchive(rest)
	case KindDir:
		return openSkopeoDir(rest)
	case KindDaemon:
		return openDaemon(ctx, rest)
	case KindRegistry:
		return openRemote(ctx, rest)
	case "":
		t, err := openDaemon(ctx, rest)
		if err == nil {
			return t, nil
		}
		t, rerr := openRemote(ctx, rest)
		if rerr != nil {
			return nil, fmt.Errorf("%s: not in the local Docker Engine (%v), and the registry failed: %w", rest, err, rerr)
		}
		return t, nil
	}
	return nil, &UsageError{fmt.Sprintf("target %q: %s: targets are not images", target, kind)}
}

// UsageError is a malformed target (exit 64).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func readJSON(s store, name string, v any) error {
	rc, err := s.open(name)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := json.NewDecoder(io.LimitReader(rc, 16<<20)).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func readConfig(s store, name string) (*v1.ConfigFile, error) {
	rc, err := s.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	cfg, err := v1.ParseConfigFile(io.LimitReader(rc, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("image config %s: %w", name, err)
	}
	return cfg, nil
}

func platformOf(cfg *v1.ConfigFile, p *v1.Platform) string {
	if p != nil {
		return p.String()
	}
	if cfg != nil && cfg.OS != "" {
		return (&v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}).String()
	}
	return ""
}
