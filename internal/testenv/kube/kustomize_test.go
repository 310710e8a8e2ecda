package kube

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// certManagerModule holds the CustomResourceDefinitions of the kinds the
// cert-manager overlay uses, under deploy/crds (plain controller-gen
// output, the source of cert-manager's own Helm chart). They come from the
// Go module proxy like everything else here; nothing imports the module,
// so it is fetched with `go mod download` into the module cache and costs
// no compile time.
const certManagerModule = "github.com/cert-manager/cert-manager@v1.21.2"

var (
	crdOnce sync.Once
	crdErr  error
)

// certManagerCRDs installs cert-manager's Issuer and Certificate CRDs into
// the API server once. Without the module proxy the cert-manager kinds
// cannot be validated: the test skips them saying so (under CI=true it
// fails).
func certManagerCRDs(t *testing.T, c *cluster) bool {
	t.Helper()
	crdOnce.Do(func() {
		cmd := exec.Command("go", "mod", "download", "-json", certManagerModule)
		cmd.Dir = t.TempDir() // outside any module: go.sum stays as it is
		out, err := cmd.Output()
		var m struct{ Dir, Error string }
		if jerr := json.Unmarshal(out, &m); err != nil || jerr != nil || m.Error != "" || m.Dir == "" {
			crdErr = fmt.Errorf("go mod download %s: %v %s", certManagerModule, err, m.Error)
			return
		}
		crds := filepath.Join(m.Dir, "deploy", "crds")
		_, crdErr = envtest.InstallCRDs(c.cfg, envtest.CRDInstallOptions{Paths: []string{
			filepath.Join(crds, "cert-manager.io_issuers.yaml"),
			filepath.Join(crds, "cert-manager.io_certificates.yaml"),
		}, ErrorIfPathMissing: true})
		c.mapper.Reset() // discovery must see the new kinds
	})
	if crdErr != nil {
		msg := "cert-manager's CRDs could not be installed, so its Issuer and Certificate are not validated: " + crdErr.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Log(msg)
		return false
	}
	return true
}

// TestKustomizeRendersAndApplies renders deploy/kubernetes/base and the
// cert-manager overlay as `kubectl apply -k` does (kustomize's krusty, the
// library kubectl embeds) and applies the result with strict server-side
// validation, cert-manager's kinds against cert-manager's own CRDs.
func TestKustomizeRendersAndApplies(t *testing.T) {
	c := start(t)
	withCM := certManagerCRDs(t, c)
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	for _, dir := range []string{"deploy/kubernetes/base", "deploy/kubernetes/cert-manager"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot, dir))
			if err != nil {
				t.Fatalf("kustomize build %s: %v", dir, err)
			}
			out, err := rm.AsYaml()
			if err != nil {
				t.Fatal(err)
			}
			docs := splitYAML(t, out)
			var send [][]byte
			kinds := map[string]bool{}
			for _, d := range docs {
				var u struct {
					APIVersion string `json:"apiVersion"`
					Kind       string `json:"kind"`
				}
				yaml.Unmarshal(d, &u)
				kinds[u.Kind] = true
				if strings.HasPrefix(u.APIVersion, "cert-manager.io/") && !withCM {
					continue
				}
				send = append(send, d)
			}
			for _, want := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "PodDisruptionBudget", "MutatingWebhookConfiguration"} {
				if !kinds[want] {
					t.Errorf("%s renders no %s", dir, want)
				}
			}
			// What the kustomization promises: the image pinned once and
			// copied into SECRETBROKER_IMAGE; the overlay's CA injection.
			rendered := string(out)
			if strings.Count(rendered, "ghcr.io/secretbroker/secretbroker:0.1.0") != 2 || !strings.Contains(rendered, "name: SECRETBROKER_IMAGE\n          value: ghcr.io/secretbroker/secretbroker:0.1.0") {
				t.Errorf("%s: the image is not pinned once and copied into SECRETBROKER_IMAGE:\n%s", dir, rendered)
			}
			if dir == "deploy/kubernetes/cert-manager" {
				for _, want := range []string{"kind: Issuer", "kind: Certificate", "cert-manager.io/inject-ca-from: secretbroker/secretbroker-webhook"} {
					if !strings.Contains(rendered, want) {
						t.Errorf("the overlay renders no %q", want)
					}
				}
			}
			c.apply(t, dir+" (rendered)", send)
		})
	}
}
