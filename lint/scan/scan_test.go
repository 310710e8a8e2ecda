package scan_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/secretbroker/secretbroker/lint/internal/testimage"
	"github.com/secretbroker/secretbroker/lint/internal/testsecret"
	"github.com/secretbroker/secretbroker/lint/rules"
	"github.com/secretbroker/secretbroker/lint/scan"
	"github.com/secretbroker/secretbroker/lint/source"
)

func scanTarget(t *testing.T, target string) *scan.Result {
	t.Helper()
	e, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	s := scan.New(e)
	tg, err := source.Open(context.Background(), target)
	if err != nil {
		t.Fatalf("open %s: %v", target, err)
	}
	defer tg.Close()
	s.Target(context.Background(), tg)
	return s.Result()
}

func find(res *scan.Result, rule, path string) *scan.Finding {
	for i, f := range res.Findings {
		if f.RuleID == rule && (path == "" || f.Path == path) {
			return &res.Findings[i]
		}
	}
	return nil
}

// Whiteouts, opaque directories and overwrites: each finding says whether
// it survives into the final filesystem.
func TestLayerStatus(t *testing.T) {
	pat := func() string { return "t=" + testsecret.GitHubPAT() + "\n" }
	img := testimage.Image(v1.Config{},
		[]testimage.File{{Name: "a/kept.txt", Body: pat()}, {Name: "a/gone.txt", Body: pat()}, {Name: "b/c/x.txt", Body: pat()}, {Name: "d/y.txt", Body: pat()}, {Name: "e/z.txt", Body: pat()}},
		[]testimage.File{{Name: "a/gone.txt", Whiteout: true}, {Name: "b", Whiteout: true}, {Name: "d/.wh..wh..opq", Body: ""}, {Name: "e", Typeflag: '2', Linkname: "/tmp"}},
	)
	p := filepath.Join(t.TempDir(), "img.tar")
	if err := testimage.DockerArchive(p, img); err != nil {
		t.Fatal(err)
	}
	res := scanTarget(t, "docker-archive:"+p)
	want := map[string]string{
		"a/kept.txt": scan.StatusFinal,
		"a/gone.txt": "deleted by layer 2; recoverable from layer 1",
		"b/c/x.txt":  "deleted by layer 2 (directory b removed)",
		"d/y.txt":    "deleted by layer 2 (opaque directory d)",
		"e/z.txt":    "hidden by layer 2 (e replaced)",
	}
	for path, st := range want {
		f := find(res, "github-pat", path)
		if f == nil {
			t.Errorf("%s: no finding", path)
			continue
		}
		if !strings.HasPrefix(f.Status, st) {
			t.Errorf("%s: status %q, want %q", path, f.Status, st)
		}
		if f.Layer != 1 || !strings.HasPrefix(f.LayerDigest, "sha256:") || f.History != 1 {
			t.Errorf("%s: layer %d %s history %d", path, f.Layer, f.LayerDigest, f.History)
		}
	}
}

// A layer blob whose bytes do not match its digest fails the scan.
func TestDigestMismatch(t *testing.T) {
	img := testimage.Image(v1.Config{}, []testimage.File{{Name: "x", Body: "hello"}})
	dir := t.TempDir()
	if err := testimage.OCILayout(dir, img); err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	blob := filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
	other := testimage.Layer(testimage.Tar(testimage.File{Name: "y", Body: "tampered"}))
	rc, _ := other.Compressed()
	defer rc.Close()
	data := make([]byte, 0, 4096)
	buf := make([]byte, 4096)
	for {
		n, err := rc.Read(buf)
		data = append(data, buf[:n]...)
		if err != nil {
			break
		}
	}
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	res := scanTarget(t, "oci:"+dir)
	if !res.Incomplete() || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "digest mismatch") {
		t.Fatalf("errors %v", res.Errors)
	}
}

// docker:// against a registry on 127.0.0.1 serving a two-platform index
// whose platforms share a layer: every platform is scanned, the shared
// layer once.
func TestRegistryIndex(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	shared := []testimage.File{{Name: "etc/shared.conf", Body: "token: " + testsecret.Vault() + "\n"}}
	amd := testimage.Image(v1.Config{}, shared, []testimage.File{{Name: "amd.txt", Body: "k=" + testsecret.GitHubPAT() + "\n"}})
	arm := testimage.Image(v1.Config{}, shared, []testimage.File{{Name: "arm.txt", Body: "k=" + testsecret.Stripe() + "\n"}})
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	ref, err := name.ParseReference(host + "/app:multi")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	res := scanTarget(t, "docker://"+host+"/app:multi")
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	v := find(res, "vault-service-token", "etc/shared.conf")
	if v == nil || len(v.Platforms) != 2 {
		t.Fatalf("shared layer finding: %+v", v)
	}
	n := 0
	for _, f := range res.Findings {
		if f.RuleID == "vault-service-token" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("shared layer reported %d times", n)
	}
	if find(res, "github-pat", "amd.txt") == nil || find(res, "stripe-secret-key", "arm.txt") == nil {
		t.Fatalf("platform layers missed: %d findings", len(res.Findings))
	}
}

// One real `docker build` (FROM scratch), read back through `docker save`
// and through the daemon.
func TestDockerBuild(t *testing.T) {
	if err := exec.Command("docker", "info").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("docker info failed in CI: %v", err)
		}
		t.Skipf("no Docker Engine here (docker info: %v); set CI=true to make this a failure", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.env"), []byte("API_TOKEN="+testsecret.GitHubPAT()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY app.env /etc/app.env\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("secretbroker-lint-test:%d", os.Getpid())
	if out, err := exec.Command("docker", "build", "-q", "-t", tag, dir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	tarPath := filepath.Join(dir, "saved.tar")
	if out, err := exec.Command("docker", "save", "-o", tarPath, tag).CombinedOutput(); err != nil {
		t.Fatalf("docker save: %v\n%s", err, out)
	}
	for _, target := range []string{"docker-archive:" + tarPath, "docker-daemon:" + tag} {
		res := scanTarget(t, target)
		if len(res.Errors) > 0 {
			t.Fatalf("%s: %v", target, res.Errors)
		}
		f := find(res, "github-pat", "etc/app.env")
		if f == nil || f.Status != scan.StatusFinal || f.Layer != 1 {
			t.Fatalf("%s: finding %+v", target, f)
		}
	}
}

// oci:DIR:TAG picks the image by its ref name annotation.
func TestOCILayoutTag(t *testing.T) {
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for tag, body := range map[string]string{"v1": "k=" + testsecret.GitHubPAT() + "\n", "v2": "nothing\n"} {
		img := testimage.Image(v1.Config{}, []testimage.File{{Name: "app.txt", Body: body}})
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
			t.Fatal(err)
		}
	}
	if res := scanTarget(t, "oci:"+dir+":v1"); find(res, "github-pat", "app.txt") == nil {
		t.Fatal("v1: finding missing")
	}
	if res := scanTarget(t, "oci:"+dir+":v2"); len(res.Findings) != 0 {
		t.Fatalf("v2: %d findings", len(res.Findings))
	}
	if _, err := source.Open(context.Background(), "oci:"+dir+":v3"); err == nil || !strings.Contains(err.Error(), `no image tagged "v3"`) {
		t.Fatalf("v3: %v", err)
	}
}

// dir: is skopeo's directory of blobs: manifest.json, and each blob named by
// its hex digest.
func TestSkopeoDir(t *testing.T) {
	img := testimage.Image(v1.Config{}, []testimage.File{{Name: "srv/t.txt", Body: "k=" + testsecret.GitHubPAT() + "\n"}})
	dir := t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := img.RawManifest()
	write("manifest.json", m)
	cfg, _ := img.RawConfigFile()
	cn, _ := img.ConfigName()
	write(cn.Hex, cfg)
	ls, _ := img.Layers()
	for _, l := range ls {
		d, _ := l.Digest()
		rc, _ := l.Compressed()
		b, _ := io.ReadAll(rc)
		rc.Close()
		write(d.Hex, b)
	}
	write("version", []byte("Directory Transport Version: 1.1\n"))
	res := scanTarget(t, "dir:"+dir)
	if f := find(res, "github-pat", "srv/t.txt"); f == nil || f.Status != scan.StatusFinal {
		t.Fatalf("finding %+v, errors %v", f, res.Errors)
	}
}
