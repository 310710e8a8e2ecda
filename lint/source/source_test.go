package source

import "testing"

func TestSplit(t *testing.T) {
	for _, tt := range []struct{ in, kind, rest string }{
		{"docker-archive:/tmp/a.tar", KindDockerArchive, "/tmp/a.tar"},
		{"oci:dir:tag", KindOCI, "dir:tag"},
		{"oci-archive:a.tar", KindOCIArchive, "a.tar"},
		{"docker-daemon:app:1", KindDaemon, "app:1"},
		{"docker://ghcr.io/x/y:1", KindRegistry, "ghcr.io/x/y:1"},
		{"fs:.", KindFS, "."},
		{"dir:blobs", KindDir, "blobs"},
		{"dockerfile:Dockerfile", KindDockerfile, "Dockerfile"},
		{"alpine:3.20", "", "alpine:3.20"},
		{"localhost:5000/app", "", "localhost:5000/app"},
	} {
		k, r := Split(tt.in)
		if k != tt.kind || r != tt.rest {
			t.Errorf("Split(%q) = %q, %q", tt.in, k, r)
		}
	}
}
