package k8s_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	_ "github.com/secretbroker/secretbroker/providers/builtin" // references parse as inject parses them
	"github.com/secretbroker/secretbroker/spec"
)

// decodeAll decodes every document of every manifest strictly: an unknown
// or duplicated field, a wrong type or an unknown kind fails the test.
func decodeAll(t *testing.T) []runtime.Object {
	t.Helper()
	sch := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, rbacv1.AddToScheme} {
		if err := add(sch); err != nil {
			t.Fatal(err)
		}
	}
	dec := serializer.NewCodecFactory(sch, serializer.EnableStrict).UniversalDeserializer()
	files, _ := filepath.Glob("*.yaml")
	files = slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	if len(files) < 4 {
		t.Fatalf("manifests: %v", files)
	}
	var out []runtime.Object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for i := 0; ; i++ {
			doc, err := r.Read()
			if err != nil {
				break
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj, _, err := dec.Decode(doc, nil, nil)
			if err != nil {
				t.Errorf("%s document %d: %v", f, i, err)
				continue
			}
			out = append(out, obj)
		}
	}
	return out
}

func TestManifestsDecodeStrictly(t *testing.T) {
	var dep *appsv1.Deployment
	var job *batchv1.Job
	var cm *corev1.ConfigMap
	sas := map[string]bool{}
	var crb *rbacv1.ClusterRoleBinding
	for _, o := range decodeAll(t) {
		switch x := o.(type) {
		case *appsv1.Deployment:
			if x.Name == "app" {
				dep = x
			}
		case *batchv1.Job:
			job = x
		case *corev1.ConfigMap:
			cm = x
		case *corev1.ServiceAccount:
			sas[x.Name] = true
		case *rbacv1.ClusterRoleBinding:
			crb = x
		}
	}
	if dep == nil || job == nil || cm == nil || crb == nil || !sas["app"] || !sas["vault-auth"] {
		t.Fatalf("missing objects: deployment %v job %v configmap %v crb %v sas %v", dep != nil, job != nil, cm != nil, crb != nil, sas)
	}
	if crb.RoleRef.Name != "system:auth-delegator" || crb.Subjects[0].Name != "vault-auth" {
		t.Errorf("vault-auth binding = %+v", crb)
	}

	// The Deployment: a native sidecar with a startupProbe on /readyz,
	// sharing a memory-backed emptyDir with the app (read-only there).
	pod := dep.Spec.Template.Spec
	if pod.ServiceAccountName != "app" {
		t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
	}
	if len(pod.InitContainers) != 1 {
		t.Fatalf("init containers: %d", len(pod.InitContainers))
	}
	sc := pod.InitContainers[0]
	if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("the broker is not a native sidecar (restartPolicy: Always)")
	}
	if sc.StartupProbe == nil || sc.StartupProbe.HTTPGet == nil || sc.StartupProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("startupProbe = %+v, want httpGet /readyz", sc.StartupProbe)
	}
	if sc.LivenessProbe == nil || sc.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("no liveness probe on /healthz")
	}
	if !hasEnv(sc.Env, "INJECT_LISTEN", "$(POD_IP):9102") {
		t.Error("the broker does not listen on the pod IP, where the kubelet probes")
	}
	checkMemoryDir(t, pod.Volumes, "secrets")
	if m := mount(sc.VolumeMounts, "secrets"); m == nil || m.ReadOnly || m.MountPath != spec.DefaultDir {
		t.Errorf("broker secrets mount = %+v", m)
	}
	app := pod.Containers[0]
	if m := mount(app.VolumeMounts, "secrets"); m == nil || !m.ReadOnly || m.MountPath != spec.DefaultDir {
		t.Errorf("app secrets mount = %+v", m)
	}

	// The Job: broker --once first, then a sidecar that exits on the sentinel the app writes.
	jp := job.Spec.Template.Spec
	if jp.RestartPolicy != corev1.RestartPolicyNever || len(jp.InitContainers) != 1 || !slices.Contains(jp.InitContainers[0].Args, "--once") {
		t.Errorf("job init = %+v", jp.InitContainers)
	}
	checkMemoryDir(t, jp.Volumes, "secrets")
	var sidecar *corev1.Container
	for i := range jp.Containers {
		if jp.Containers[i].Name == "secretbroker" {
			sidecar = &jp.Containers[i]
		}
	}
	if sidecar == nil || !slices.Contains(sidecar.Args, "--exit-when") {
		t.Fatal("the job's broker sidecar does not use --exit-when")
	}
	sentinel := sidecar.Args[slices.Index(sidecar.Args, "--exit-when")+1]
	if !strings.Contains(strings.Join(jp.Containers[0].Command, " "), "touch "+sentinel) {
		t.Errorf("the job's app does not write the sentinel %s", sentinel)
	}

	// The broker's declaration in the ConfigMap is valid.
	f := filepath.Join(t.TempDir(), "broker.yaml")
	os.WriteFile(f, []byte(cm.Data["broker.yaml"]), 0o600)
	fs := pflag.NewFlagSet("broker", pflag.ContinueOnError)
	spec.AddFlags(fs)
	fs.Set("config", f)
	s, err := spec.Load(fs)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Secrets) != 2 || len(s.Warnings) != 0 || s.Providers["vault"]["auth"] == nil {
		t.Errorf("configmap broker.yaml: secrets %d warnings %v", len(s.Secrets), s.Warnings)
	}
	// An emptyDir is 0777 without the sticky bit, which the broker refuses:
	// the broker's dir must be a subdirectory it creates, and the app must
	// read and watch that same subdirectory.
	if filepath.Dir(s.Dir) != spec.DefaultDir {
		t.Errorf("configmap dir %s is not a subdirectory of the emptyDir mount %s", s.Dir, spec.DefaultDir)
	}
	if !hasEnv(app.Env, "DB_PASSWORD_FILE", filepath.Join(s.Dir, s.Secrets[0].Name)) {
		t.Error("the app's DB_PASSWORD_FILE does not point at the broker's file")
	}
	if cmd := strings.Join(app.Command, " "); !strings.Contains(cmd, "--dir "+s.Dir+" --supervise --watch "+s.Dir+" --reload-signal SIGHUP --") {
		t.Errorf("app command %q does not read and watch %s", cmd, s.Dir)
	}
	if !hasEnv(job.Spec.Template.Spec.Containers[0].Env, "DB_PASSWORD_FILE", filepath.Join(s.Dir, s.Secrets[0].Name)) {
		t.Error("the job's DB_PASSWORD_FILE does not point at the broker's file")
	}
}

func hasEnv(env []corev1.EnvVar, k, v string) bool {
	for _, e := range env {
		if e.Name == k && e.Value == v {
			return true
		}
	}
	return false
}

func mount(ms []corev1.VolumeMount, name string) *corev1.VolumeMount {
	for i := range ms {
		if ms[i].Name == name {
			return &ms[i]
		}
	}
	return nil
}

func checkMemoryDir(t *testing.T, vols []corev1.Volume, name string) {
	t.Helper()
	for _, v := range vols {
		if v.Name == name {
			if v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
				t.Errorf("volume %s is not an emptyDir with medium: Memory", name)
			}
			return
		}
	}
	t.Errorf("no volume %s", name)
}

// TestStrictDecodingCatchesTypos proves the check has teeth.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	sch := runtime.NewScheme()
	appsv1.AddToScheme(sch)
	dec := serializer.NewCodecFactory(sch, serializer.EnableStrict).UniversalDeserializer()
	_, _, err := dec.Decode([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
}

// TestCAAndImage: the CA that broker.yaml's ca_file names is projected
// next to it from a ConfigMap, and every secretbroker image is pinned by a
// tag that kustomization.yaml's images: sets in one place.
func TestCAAndImage(t *testing.T) {
	kb, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
		Images     []struct {
			Name, NewTag string
		} `json:"images"`
	}
	if err := sigsyaml.UnmarshalStrict(kb, &k); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		if f != "kustomization.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("kustomization.yaml does not list %s", f)
		}
	}
	if len(k.Images) != 1 || k.Images[0].Name != "ghcr.io/secretbroker/secretbroker" || k.Images[0].NewTag == "" || k.Images[0].NewTag == "latest" {
		t.Fatalf("kustomization images = %+v", k.Images)
	}
	want := k.Images[0].Name + ":" + k.Images[0].NewTag
	for _, o := range decodeAll(t) {
		var pod *corev1.PodSpec
		switch x := o.(type) {
		case *appsv1.Deployment:
			pod = &x.Spec.Template.Spec
		case *batchv1.Job:
			pod = &x.Spec.Template.Spec
		default:
			continue
		}
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			if strings.HasPrefix(c.Image, k.Images[0].Name) && c.Image != want {
				t.Errorf("container %s: image %s, want %s (pinned, set by kustomization.yaml)", c.Name, c.Image, want)
			}
		}
		for _, v := range pod.Volumes {
			if v.Name != "config" {
				continue
			}
			found := false
			for _, src := range v.Projected.Sources {
				if src.ConfigMap != nil && src.ConfigMap.Name == "vault-ca" && len(src.ConfigMap.Items) == 1 && src.ConfigMap.Items[0].Path == "vault-ca.pem" {
					found = true
				}
			}
			if !found {
				t.Errorf("volume config does not project vault-ca.pem (broker.yaml's ca_file)")
			}
		}
	}
}
