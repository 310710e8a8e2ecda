package kube

import (
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

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
