package webhook

// The tests behind SECURITY.md's "The Kubernetes admission webhook": each
// tries to break one promise made there.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// manifest decodes the one document of deploy/kubernetes/base/name, or
// the document of kind in it.
func manifest(t *testing.T, name, kind string, out any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "kubernetes", "base", name))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if meta.Kind == kind {
			if err := yaml.UnmarshalStrict([]byte(doc), out); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return
		}
	}
	t.Fatalf("%s has no %s", name, kind)
}

// TestDeployFailsClosed: the registration the deploy manifests install
// fails closed (a pod that opted in is refused while the webhook cannot
// answer), has no side effects, sees only the creation of pods that
// mention the opt-in, and never pods of kube-system or its own namespace.
func TestDeployFailsClosed(t *testing.T) {
	var cfg admissionregistrationv1.MutatingWebhookConfiguration
	manifest(t, "webhook.yaml", "MutatingWebhookConfiguration", &cfg)
	var dep appsv1.Deployment
	manifest(t, "deployment.yaml", "Deployment", &dep)
	if len(cfg.Webhooks) != 1 {
		t.Fatalf("%d webhooks", len(cfg.Webhooks))
	}
	w := cfg.Webhooks[0]
	if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failurePolicy %v: an outage would admit opted-in pods without their secrets", w.FailurePolicy)
	}
	if w.SideEffects == nil || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
		t.Errorf("sideEffects %v", w.SideEffects)
	}
	if w.ReinvocationPolicy == nil || *w.ReinvocationPolicy != admissionregistrationv1.NeverReinvocationPolicy {
		t.Errorf("reinvocationPolicy %v", w.ReinvocationPolicy)
	}
	if w.TimeoutSeconds == nil || *w.TimeoutSeconds > 10 {
		t.Errorf("timeoutSeconds %v", w.TimeoutSeconds)
	}
	if len(w.Rules) != 1 || !reflect.DeepEqual(w.Rules[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) ||
		!reflect.DeepEqual(w.Rules[0].Resources, []string{"pods"}) || !reflect.DeepEqual(w.Rules[0].APIGroups, []string{""}) {
		t.Errorf("rules %+v: only the creation of pods", w.Rules)
	}
	if len(w.MatchConditions) != 1 || !strings.Contains(w.MatchConditions[0].Expression, "'"+AnnInject+"' in object.metadata.annotations") {
		t.Errorf("matchConditions %+v: only pods that mention %s", w.MatchConditions, AnnInject)
	}
	var excluded []string
	if w.NamespaceSelector != nil {
		for _, e := range w.NamespaceSelector.MatchExpressions {
			if e.Key == "kubernetes.io/metadata.name" && e.Operator == "NotIn" {
				excluded = e.Values
			}
		}
	}
	if !slices.Contains(excluded, "kube-system") || !slices.Contains(excluded, dep.Namespace) || w.ClientConfig.Service == nil || w.ClientConfig.Service.Namespace != dep.Namespace {
		t.Errorf("namespaceSelector excludes %v; the webhook runs in %q", excluded, dep.Namespace)
	}
}

// TestDeployLeastPrivilege: the webhook's RBAC is get on secrets and
// configmaps and nothing else (it cannot list, watch or write anything),
// and its pod holds no credential but its TLS key pair.
func TestDeployLeastPrivilege(t *testing.T) {
	var role rbacv1.ClusterRole
	manifest(t, "rbac.yaml", "ClusterRole", &role)
	if len(role.Rules) != 1 {
		t.Fatalf("rules %+v", role.Rules)
	}
	r := role.Rules[0]
	if !reflect.DeepEqual(r.Verbs, []string{"get"}) || !reflect.DeepEqual(r.APIGroups, []string{""}) || len(r.ResourceNames) != 0 {
		t.Errorf("rule %+v: want get only, in the core group", r)
	}
	res := slices.Clone(r.Resources)
	slices.Sort(res)
	if !reflect.DeepEqual(res, []string{"configmaps", "secrets"}) {
		t.Errorf("resources %v", r.Resources)
	}
	var dep appsv1.Deployment
	manifest(t, "deployment.yaml", "Deployment", &dep)
	ps := dep.Spec.Template.Spec
	for _, v := range ps.Volumes {
		if v.Secret == nil || v.Secret.SecretName != "secretbroker-webhook-tls" {
			t.Errorf("volume %s: the webhook's pod mounts only its TLS key pair", v.Name)
		}
	}
	for _, c := range ps.Containers {
		for _, e := range c.Env {
			if e.Name != "SECRETBROKER_IMAGE" && e.Name != "POD_NAMESPACE" {
				t.Errorf("env %s: the webhook is given no other setting or credential", e.Name)
			}
		}
		if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: securityContext %+v", c.Name, sc)
		}
	}
	if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
		t.Error("the webhook's pod may run as root")
	}
}

// recorder records the namespace of every read the webhook makes on a
// pod's behalf.
type recorder struct {
	mu    sync.Mutex
	reads []string // "configmap NS/NAME/KEY", "image NS secrets"
	data  string
}

func (r *recorder) ConfigMapKey(_ context.Context, ns, name, key string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads = append(r.reads, "configmap "+ns+"/"+name+"/"+key)
	if r.data == "" {
		return nil, errors.New("not found")
	}
	return []byte(r.data), nil
}

func (r *recorder) Entrypoint(_ context.Context, _, ns string, secrets []string) ([]string, []string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads = append(r.reads, "image "+ns+" "+strings.Join(secrets, ","))
	return []string{"/entry"}, nil, nil
}

// TestReadsStayInThePodsNamespace: whatever a pod's annotations say, the
// webhook reads ConfigMaps and imagePullSecrets only in the namespace the
// API server says the pod is created in, so a namespace owner cannot make
// it read another namespace's objects with its cluster-wide get.
func TestReadsStayInThePodsNamespace(t *testing.T) {
	for _, cfg := range []string{"other/broker.yaml", "other", "kube-system/app", "../other/x", "other.ns/k"} {
		rec := &recorder{data: "secrets:\n  - {name: a, ref: \"vault://s/a#k\"}\n"}
		o := Options{Image: "sb:1", ConfigMaps: rec, Images: rec}
		p := pod(map[string]string{AnnInject: "true", AnnConfig: cfg, AnnRefresh: "1m"}, corev1.Container{Name: "app", Image: "registry.example/app:1"})
		p.Namespace = "other" // what the object says is not what the API server says
		p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
		Mutate(context.Background(), o, "apps", p)
		for _, r := range rec.reads {
			if !strings.HasPrefix(r, "configmap apps/") && !strings.HasPrefix(r, "image apps ") {
				t.Errorf("config %q: read %q outside the request's namespace", cfg, r)
			}
		}
	}
}

// TestMutationGrantsNothing: whatever the annotations ask, the patch
// touches only annotations, volumes, init containers and containers; what
// it adds runs locked (no privilege escalation, read-only root, every
// capability dropped) from memory volumes and the pod's own ConfigMap;
// and every field of the pod's own containers other than command, args,
// env and volume mounts (which it only extends) is left as it was.
func TestMutationGrantsNothing(t *testing.T) {
	mine := corev1.Container{
		Name: "app", Image: "app:1", Command: []string{"/app"}, Args: []string{"-v"},
		Env:             []corev1.EnvVar{{Name: "MODE", Value: "prod"}},
		VolumeMounts:    []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
		SecurityContext: &corev1.SecurityContext{RunAsUser: ptr(int64(1000)), RunAsNonRoot: ptr(true)},
		Resources:       corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
		Ports:           []corev1.ContainerPort{{ContainerPort: 8080}},
	}
	cms := fakeConfigMaps{"apps/app-sb/broker.yaml": "secrets:\n  - {name: a, ref: \"vault://s/a#k\"}\n"}
	for _, ann := range []map[string]string{
		{AnnSecretPrefix + "db": "vault://s/db#pw"},
		{AnnSecretPrefix + "db": "vault://s/db#pw", AnnUser: "0:0", AnnDir: "/run/x/y"},
		{AnnSecretPrefix + "db": "vault://s/db#pw", AnnRefresh: "1m"},
		{AnnConfig: "app-sb", AnnRefresh: "1m", AnnContainers: "app"},
	} {
		ann[AnnInject] = "true"
		p := pod(ann, mine, corev1.Container{Name: "other", Image: "o:1", Command: []string{"/o"}})
		p.Spec.ServiceAccountName = "app"
		p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr(true)}
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		ops, err := Mutate(context.Background(), Options{Image: "sb:1", ConfigMaps: cms}, "apps", p)
		if err != nil {
			t.Fatalf("%v: %v", ann, err)
		}
		for _, op := range ops {
			if !slices.Contains([]string{"/metadata/annotations", "/spec/volumes", "/spec/initContainers", "/spec/containers"}, op.Path) {
				t.Errorf("%v: the patch touches %s", ann, op.Path)
			}
		}
		m := apply(t, p, ops)
		if !reflect.DeepEqual(m.Spec.SecurityContext, p.Spec.SecurityContext) || m.Spec.ServiceAccountName != "app" || m.Spec.HostNetwork || m.Spec.HostPID {
			t.Errorf("%v: the pod's own settings changed", ann)
		}
		for _, v := range m.Spec.Volumes[1:] {
			mem := v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory
			own := v.ConfigMap != nil && v.ConfigMap.Name == "app-sb"
			if !mem && !own {
				t.Errorf("%v: added volume %+v", ann, v.VolumeSource)
			}
		}
		for _, c := range m.Spec.InitContainers {
			sc := c.SecurityContext
			if sc == nil || sc.Privileged != nil || sc.RunAsUser != nil || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
				t.Errorf("%v: %s runs with %+v", ann, c.Name, sc)
			}
		}
		got := m.Spec.Containers[0]
		if !reflect.DeepEqual(got.SecurityContext, mine.SecurityContext) || !reflect.DeepEqual(got.Resources, mine.Resources) || !reflect.DeepEqual(got.Ports, mine.Ports) || got.Image != mine.Image {
			t.Errorf("%v: the app's container changed beyond its command", ann)
		}
		if !slices.Equal(got.Command[len(got.Command)-1:], mine.Command) || !slices.Equal(got.Args, mine.Args) || !reflect.DeepEqual(got.Env[0], mine.Env[0]) || !reflect.DeepEqual(got.VolumeMounts[0], mine.VolumeMounts[0]) {
			t.Errorf("%v: the app's command, env or mounts were not kept: %q %q", ann, got.Command, got.Args)
		}
		if ann[AnnContainers] == "app" && !reflect.DeepEqual(m.Spec.Containers[1], p.Spec.Containers[1]) {
			t.Errorf("%v: a container not selected was changed", ann)
		}
	}
}

// TestNoValueEntersThePod: the pod spec (and so etcd) and the answer to
// the API server get references and file paths only. A ConfigMap read to
// name the app's variables is mounted by name, never copied, and what a
// namespace owner put in it (here a canary where a token would be, and
// keys that are not secrets) reaches neither the patch, the denial nor the
// log, also when the declaration is refused.
func TestNoValueEntersThePod(t *testing.T) {
	const canary = "hvs.s3cr3t-canary-value"
	good := "providers:\n  vault:\n    auth: {token: " + canary + "}\nsecrets:\n  - {name: a, ref: \"vault://s/a#k\"}\n"
	for _, tc := range []struct {
		name, data string
		denied     bool
	}{
		{"valid", good, false},
		{"invalid secret", good + "  - {name: \"../b\", ref: \"vault://s/b\"}\n", true},
		{"expose_as", "providers: {vault: {auth: {token: " + canary + "}}}\nsecrets:\n  - {name: a, ref: \"vault://s/a#k\", expose_as: A}\n", true},
		{"not a mapping", canary + "\n", true},
		{"a list", "- " + canary + "\n", true},
		{"secrets not a list", "secrets: " + canary + "\n", true},
		{"entry not a mapping", "secrets:\n  - " + canary + "\n", true},
		{"name not a string", "secrets:\n  - {name: {x: " + canary + "}, ref: \"vault://s/a\"}\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := NewServer(Options{Image: "sb:1", ConfigMaps: fakeConfigMaps{"apps/app-sb/broker.yaml": tc.data}}, slog.New(slog.NewJSONHandler(&logs, nil)))
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			p := pod(map[string]string{AnnInject: "true", AnnConfig: "app-sb", AnnRefresh: "1m"}, corev1.Container{Name: "app", Command: []string{"/app"}})
			resp, err := http.Post(ts.URL+"/mutate", "application/json", bytes.NewReader(review(t, "apps", p)))
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			var out struct {
				Response struct {
					Allowed bool
					Patch   []byte
				}
			}
			if err := json.Unmarshal(body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			if out.Response.Allowed == tc.denied {
				t.Errorf("allowed = %v: %s", out.Response.Allowed, body.String())
			}
			for what, b := range map[string][]byte{"answer": body.Bytes(), "patch": out.Response.Patch, "log": logs.Bytes()} {
				// yaml.v3 quotes a scalar's first 7 bytes: look for those.
				if bytes.Contains(b, []byte(canary[:7])) || bytes.Contains(b, []byte("s3cr3t")) {
					t.Errorf("the %s carries the ConfigMap's content:\n%s", what, b)
				}
			}
		})
	}
	// secret-NAME annotations travel as written: references only.
	p := pod(map[string]string{AnnInject: "true", AnnSecretPrefix + "db": "vault://s/db#pw"}, corev1.Container{Name: "app", Command: []string{"/app"}})
	m := apply(t, p, must(Mutate(context.Background(), Options{Image: "sb:1"}, "apps", p)))
	for k, v := range envOf(m.Spec.Containers[0]) {
		if k != "DB" && !strings.HasPrefix(k, "INJECT_") {
			t.Errorf("env %s=%s", k, v)
		}
	}
}

// TestTLSMinimum: the API server reaches the webhook over TLS 1.2 or
// later; an older handshake is refused.
func TestTLSMinimum(t *testing.T) {
	dir := t.TempDir()
	writeSelfSigned(t, dir, "localhost")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ListenAndServe(ctx, addr, &CertReloader{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}, http.NotFoundHandler())
	}()
	defer func() { cancel(); <-done }()
	dial := func(max uint16) error {
		var err error
		for range 50 { // until it listens
			var c *tls.Conn
			c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: max})
			if err == nil {
				c.Close()
				return nil
			}
			if !strings.Contains(err.Error(), "connection refused") {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
		return err
	}
	if err := dial(tls.VersionTLS12); err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	// The client offers 1.0 and 1.1: the server's refusal, not the
	// client's own minimum, is what fails.
	if err := dial(tls.VersionTLS11); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1: %v, want the server's protocol version alert", err)
	}
}
