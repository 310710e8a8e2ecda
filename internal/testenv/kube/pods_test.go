package kube

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/secretbroker/secretbroker/webhook"
)

const ref = "vault://secret/app/db#password"

func annotated(name string, extra map[string]string, containers ...corev1.Container) *corev1.Pod {
	ann := map[string]string{webhook.AnnInject: "true", webhook.AnnSecretPrefix + "db_password": ref}
	for k, v := range extra {
		ann[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann},
		Spec:       corev1.PodSpec{Containers: containers},
	}
}

func ctr(name, image string, command, args []string) corev1.Container {
	return corev1.Container{Name: name, Image: image, Command: command, Args: args}
}

func find(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

func env(c *corev1.Container, k string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == k {
			return e.Value, true
		}
	}
	return "", false
}

// checkInjected asserts the shape every mutated pod has, as stored.
func checkInjected(t *testing.T, p *corev1.Pod) {
	t.Helper()
	if p.Annotations[webhook.AnnStatus] != webhook.StatusInjected {
		t.Fatalf("%s: not mutated; annotations %v", p.Name, p.Annotations)
	}
	in := p.Spec.InitContainers[0]
	if in.Name != webhook.InstallContainer || !reflect.DeepEqual(in.Command, []string{"/inject", "install", webhook.BinDir}) {
		t.Errorf("%s: first init container = %s %v", p.Name, in.Name, in.Command)
	}
	for _, v := range p.Spec.Volumes {
		if v.Name == webhook.BinVolume || v.Name == webhook.SecretsVolume {
			if v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
				t.Errorf("%s: volume %s is not a memory emptyDir", p.Name, v.Name)
			}
		}
	}
}

func TestPodWithCommand(t *testing.T) {
	c := start(t)
	p, err := c.createPod(t, "apps", annotated("with-command", nil, ctr("app", "registry.example/app:1", []string{"/app", "--serve"}, []string{"--port", "80"})), true)
	if err != nil {
		t.Fatal(err)
	}
	checkInjected(t, p)
	app := p.Spec.Containers[0]
	if want := []string{webhook.BinDir + "/inject", "--", "/app", "--serve"}; !reflect.DeepEqual(app.Command, want) {
		t.Errorf("command = %q, want %q", app.Command, want)
	}
	if !reflect.DeepEqual(app.Args, []string{"--port", "80"}) {
		t.Errorf("args = %q", app.Args)
	}
	if v, _ := env(&app, "DB_PASSWORD"); v != ref {
		t.Errorf("DB_PASSWORD = %q, want the reference", v)
	}
	if v, _ := env(&app, "INJECT_DIR"); v != webhook.DefaultDir {
		t.Errorf("INJECT_DIR = %q", v)
	}
	if len(p.Spec.InitContainers) != 1 {
		t.Errorf("no refresh, yet %d init containers", len(p.Spec.InitContainers))
	}
}

func TestPodWithoutCommandReadsImageConfig(t *testing.T) {
	c := start(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.Config.Entrypoint = []string{"/srv/app"}
	cf.Config.Cmd = []string{"--from-image"}
	img, _ = mutate.ConfigFile(img, cf)
	tag, _ := name.ParseReference(host + "/team/app:1.0")
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	p, err := c.createPod(t, "apps", annotated("no-command", nil, ctr("app", tag.String(), nil, nil)), true)
	if err != nil {
		t.Fatal(err)
	}
	checkInjected(t, p)
	app := p.Spec.Containers[0]
	if want := []string{webhook.BinDir + "/inject", "--", "/srv/app"}; !reflect.DeepEqual(app.Command, want) || !reflect.DeepEqual(app.Args, []string{"--from-image"}) {
		t.Errorf("command %q args %q, want %q [--from-image]", app.Command, app.Args, want)
	}

	// The pod's args replace the image's CMD.
	p, err = c.createPod(t, "apps", annotated("no-command-args", nil, ctr("app", tag.String(), nil, []string{"--mine"})), true)
	if err != nil {
		t.Fatal(err)
	}
	if app := p.Spec.Containers[0]; !reflect.DeepEqual(app.Args, []string{"--mine"}) || app.Command[len(app.Command)-1] != "/srv/app" {
		t.Errorf("command %q args %q", app.Command, app.Args)
	}

	// An image that cannot be read denies the pod, saying which.
	_, err = c.createPod(t, "apps", annotated("no-such-image", nil, ctr("app", host+"/team/missing:1.0", nil, nil)), true)
	if err == nil || !strings.Contains(err.Error(), "ENTRYPOINT of image "+host+"/team/missing:1.0 could not be read") {
		t.Errorf("missing image: err = %v", err)
	}
}

func TestPodSeveralContainers(t *testing.T) {
	c := start(t)
	p, err := c.createPod(t, "apps", annotated("several", map[string]string{webhook.AnnContainers: "a,c"},
		ctr("a", "x/a:1", []string{"/a"}, nil), ctr("b", "x/b:1", []string{"/b"}, nil), ctr("c", "x/c:1", []string{"/c"}, nil)), true)
	if err != nil {
		t.Fatal(err)
	}
	checkInjected(t, p)
	for _, n := range []string{"a", "c"} {
		if got := find(p.Spec.Containers, n).Command; got[0] != webhook.BinDir+"/inject" || got[len(got)-1] != "/"+n {
			t.Errorf("container %s command = %q", n, got)
		}
	}
	b := find(p.Spec.Containers, "b")
	if !reflect.DeepEqual(b.Command, []string{"/b"}) || len(b.Env) != 0 || len(b.VolumeMounts) > 1 {
		t.Errorf("container b was changed: %q env %v", b.Command, b.Env)
	}
}

func TestPodExistingInitContainerAndRefresh(t *testing.T) {
	c := start(t)
	pod := annotated("init-refresh", map[string]string{webhook.AnnRefresh: "5m", webhook.AnnUser: "1000:1000"}, ctr("app", "x/app:1", []string{"/app"}, nil))
	pod.Spec.InitContainers = []corev1.Container{ctr("migrate", "x/migrate:1", []string{"/migrate"}, nil)}
	p, err := c.createPod(t, "apps", pod, true)
	if err != nil {
		t.Fatal(err)
	}
	checkInjected(t, p)
	var names []string
	for _, ic := range p.Spec.InitContainers {
		names = append(names, ic.Name)
	}
	if want := []string{webhook.InstallContainer, webhook.BrokerContainer, "migrate"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("init containers %v, want %v (the broker must run before the pod's own)", names, want)
	}
	b := p.Spec.InitContainers[1]
	if b.RestartPolicy == nil || *b.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("the broker is not a native sidecar")
	}
	if b.StartupProbe == nil || b.StartupProbe.HTTPGet == nil || b.StartupProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("startupProbe = %+v", b.StartupProbe)
	}
	if v, _ := env(&b, "DB_PASSWORD"); v != ref {
		t.Error("the broker lacks the reference")
	}
	if v, _ := env(&b, "INJECT_USER"); v != "1000:1000" {
		t.Errorf("INJECT_USER = %q", v)
	}
	app := p.Spec.Containers[0]
	if _, ok := env(&app, "DB_PASSWORD"); ok {
		t.Error("with a broker, the app's container holds the reference too")
	}
	if v, _ := env(&app, "DB_PASSWORD_FILE"); v != webhook.DefaultDir+"/db_password" {
		t.Errorf("DB_PASSWORD_FILE = %q", v)
	}
	if !slices.Contains(app.Command, "--watch") {
		t.Errorf("app command %q does not relay changes", app.Command)
	}
	if slices.Contains(b.Args, "--exit-when") {
		t.Error("--exit-when on a pod that is no Job's")
	}
}

func TestJobPod(t *testing.T) {
	c := start(t)
	pod := annotated("job-pod", map[string]string{webhook.AnnRefresh: "1m"}, ctr("report", "x/report:1", []string{"/report"}, nil))
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "report", UID: "0c3f8a8e-0000-4000-8000-000000000001"}}
	pod.Labels = map[string]string{"batch.kubernetes.io/job-name": "report"}
	p, err := c.createPod(t, "apps", pod, true)
	if err != nil {
		t.Fatal(err)
	}
	checkInjected(t, p)
	// The plain native sidecar: the kubelet stops it when the Job's
	// containers end (TestRuntimeShape/job-sidecar runs that on Docker).
	b := find(p.Spec.InitContainers, webhook.BrokerContainer)
	if b == nil || b.RestartPolicy == nil || *b.RestartPolicy != corev1.ContainerRestartPolicyAlways || len(b.Args) != 0 {
		t.Fatalf("job broker = %+v, want a native sidecar with no args", b)
	}
}

// TestPodConfigWithRefresh: the broker holds the ConfigMap's declaration,
// and the app's containers get the NAME_FILE variable of each of its
// secrets, which the webhook reads (as its service account, with the RBAC
// of deploy/) from the ConfigMap.
func TestPodConfigWithRefresh(t *testing.T) {
	c := start(t)
	c.namespace(t, "apps")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-sb", Namespace: "apps"}, Data: map[string]string{"broker.yaml": `secrets:
  - {name: stripe_key, ref: "aws-sm://prod/stripe#key"}
  - {name: tls, ref: "vault://secret/app/tls#key", env: TLS_KEY_PATH}
  - {name: quiet, ref: "vault://secret/app/q#v", env: ""}
`}}
	if _, err := c.cs.CoreV1().ConfigMaps("apps").Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := c.createPod(t, "apps", annotated("config-refresh", map[string]string{webhook.AnnConfig: "app-sb", webhook.AnnRefresh: "5m"}, ctr("app", "x/app:1", []string{"/app"}, nil)), true)
	if err != nil {
		t.Fatal(err)
	}
	checkInjected(t, p)
	app := p.Spec.Containers[0]
	for k, want := range map[string]string{
		"DB_PASSWORD_FILE": webhook.DefaultDir + "/db_password", // the annotation
		"STRIPE_KEY_FILE":  webhook.DefaultDir + "/stripe_key",  // the ConfigMap
		"TLS_KEY_PATH":     webhook.DefaultDir + "/tls",
	} {
		if v, _ := env(&app, k); v != want {
			t.Errorf("app %s = %q, want %q (env %v)", k, v, want, app.Env)
		}
	}
	if len(app.Env) != 3 {
		t.Errorf("app env %v, want the three NAME_FILE variables only", app.Env)
	}
	b := find(p.Spec.InitContainers, webhook.BrokerContainer)
	if v, _ := env(b, "INJECT_CONFIG"); v != webhook.ConfigDir+"/broker.yaml" {
		t.Errorf("broker INJECT_CONFIG = %q", v)
	}

	// A ConfigMap that does not exist denies the pod, naming it.
	_, err = c.createPod(t, "apps", annotated("config-missing", map[string]string{webhook.AnnConfig: "nope", webhook.AnnRefresh: "5m"}, ctr("app", "x/app:1", []string{"/app"}, nil)), true)
	if err == nil || !strings.Contains(err.Error(), "ConfigMap apps/nope key broker.yaml could not be read") || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing ConfigMap: err = %v", err)
	}
}

// TestHandlerExcludesWhatTheSelectorSends: a configuration with no
// namespaceSelector sends the webhook pods of kube-system and of its own
// namespace; the handler itself admits them unchanged.
func TestHandlerExcludesWhatTheSelectorSends(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	for _, ns := range []string{"kube-system", "secretbroker"} {
		c.namespace(t, ns)
		pod := annotated("handler-excluded", nil, ctr("app", "x/app:1", []string{"/app"}, nil))
		pod.Labels = map[string]string{handlerCheckLabel: "true"}
		// The API server loads the configuration asynchronously: retry
		// until the webhook's log shows it was asked about this pod.
		seen := fmt.Sprintf(`"namespace":%q,"name":"handler-excluded"`, ns)
		var p *corev1.Pod
		for deadline := time.Now().Add(30 * time.Second); ; {
			got, err := c.cs.CoreV1().Pods(ns).Create(ctx, pod.DeepCopy(), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(c.logs.String(), seen) {
				if p, err = c.cs.CoreV1().Pods(ns).Get(ctx, got.Name, metav1.GetOptions{}); err != nil {
					t.Fatal(err)
				}
				break
			}
			c.cs.CoreV1().Pods(ns).Delete(ctx, got.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
			if time.Now().After(deadline) {
				t.Fatalf("%s: the webhook was never asked about the pod:\n%s", ns, c.logs.String())
			}
			time.Sleep(300 * time.Millisecond)
		}
		if _, ok := p.Annotations[webhook.AnnStatus]; ok || len(p.Spec.InitContainers) != 0 || !reflect.DeepEqual(p.Spec.Containers[0].Command, []string{"/app"}) {
			t.Errorf("%s: the handler mutated a pod of an excluded namespace", ns)
		}
		if !strings.Contains(c.logs.String(), seen+`,"operation":"CREATE","result":"excluded"`) {
			t.Errorf("%s: no result=excluded in the webhook's log:\n%s", ns, c.logs.String())
		}
	}
}

func TestExcludedNamespace(t *testing.T) {
	c := start(t)
	for _, ns := range []string{"secretbroker", "kube-system"} {
		p, err := c.createPod(t, ns, annotated("excluded", nil, ctr("app", "x/app:1", []string{"/app"}, nil)), false)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.Annotations[webhook.AnnStatus]; ok || len(p.Spec.InitContainers) != 0 || p.Spec.Containers[0].Command[0] != "/app" {
			t.Errorf("%s: a pod was mutated", ns)
		}
	}
}

func TestInvalidAnnotationDenies(t *testing.T) {
	c := start(t)
	for _, tc := range []struct{ key, value, want string }{
		{webhook.AnnRefresh, "soon", webhook.AnnRefresh},
		{webhook.Prefix + "secrets-db", ref, webhook.Prefix + "secrets-db: unknown annotation"},
		{webhook.AnnSecretPrefix + "api", "valut://x/y", webhook.AnnSecretPrefix + "api"},
		{webhook.AnnInject, "yes", webhook.AnnInject},
		{webhook.AnnContainers, "nope", "no container \"nope\""},
	} {
		_, err := c.createPod(t, "apps", annotated("invalid", map[string]string{tc.key: tc.value}, ctr("app", "x/app:1", []string{"/app"}, nil)), true)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "denied the request") {
			t.Errorf("%s=%s: err = %v, want a denial naming %s", tc.key, tc.value, err, tc.want)
		}
	}
}

func TestReadmissionChangesNothing(t *testing.T) {
	c := start(t)
	first, err := c.createPod(t, "apps", annotated("readmit", nil, ctr("app", "x/app:1", []string{"/app"}, nil)), true)
	if err != nil {
		t.Fatal(err)
	}
	again := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "readmit-2", Annotations: first.Annotations, Labels: first.Labels}, Spec: first.Spec}
	again.Spec.NodeName = ""
	second, err := c.createPod(t, "apps", again, false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first.Spec.InitContainers, second.Spec.InitContainers) || !reflect.DeepEqual(first.Spec.Containers, second.Spec.Containers) || !reflect.DeepEqual(first.Spec.Volumes, second.Spec.Volumes) {
		t.Error("re-admitting an injected pod changed it")
	}
}

// TestNoValueInStoredPods: what etcd holds names references only.
func TestNoSecretValueStored(t *testing.T) {
	c := start(t)
	pods, err := c.cs.CoreV1().Pods("apps").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, ct := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			for _, e := range ct.Env {
				if strings.Contains(e.Value, "s3cr3t") {
					t.Errorf("%s/%s: %s holds a value", p.Name, ct.Name, e.Name)
				}
			}
		}
	}
}

// TestManifestsApply applies every manifest of deploy/kubernetes and
// examples/k8s, each file as written, with strict server-side validation:
// the cert-manager overlay's Issuer and Certificate against cert-manager's
// own CRDs (certManagerCRDs).
func TestManifestsApply(t *testing.T) {
	c := start(t)
	withCM := certManagerCRDs(t, c)
	var files []string
	for _, root := range []string{"deploy/kubernetes", "examples/k8s"} {
		filepath.WalkDir(filepath.Join(repoRoot, root), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") && filepath.Base(p) != "kustomization.yaml" {
				files = append(files, p)
			}
			return nil
		})
	}
	if len(files) < 10 {
		t.Fatalf("only %d manifests: %v", len(files), files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs := splitYAML(t, b)
		var send [][]byte
		for _, d := range docs {
			if strings.Contains(string(d), "apiVersion: cert-manager.io/") && !withCM {
				continue
			}
			send = append(send, d)
		}
		c.apply(t, f, send)
	}
}

// TestStrictApplyCatchesTypos proves the check has teeth: a misspelt field
// is refused by the API server.
func TestStrictApplyCatchesTypos(t *testing.T) {
	c := start(t)
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "typo", "namespace": "default"},
		"spec":     map[string]any{"replica": 2},
	}}
	c.namespace(t, "default")
	err := dryRunApply(context.Background(), c.dyn.Resource(appsv1.SchemeGroupVersion.WithResource("deployments")).Namespace("default"), u)
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("a misspelt field was applied: %v", err)
	}
}
