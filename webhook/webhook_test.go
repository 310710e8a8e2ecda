package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	_ "github.com/secretbroker/secretbroker/providers/builtin"
)

func pod(ann map[string]string, cs ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: ann}, Spec: corev1.PodSpec{Containers: cs}}
}

func TestParsePlan(t *testing.T) {
	p, err := ParsePlan(map[string]string{
		AnnInject: "true", AnnSecretPrefix + "db_password": "vault://secret/app/db#password",
		AnnSecretPrefix + "api_key": "aws-sm://prod/api", AnnRefresh: "5m", AnnContainers: "a, b",
		AnnUser: "1000:1000", AnnDir: "/run/s/app", AnnConfig: "app-sb/inject.yaml", "other.io/x": "y",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Secrets) != 2 || p.Secrets[0].Name != "api_key" || p.Refresh != 5*time.Minute || len(p.Containers) != 2 || p.Dir != "/run/s/app" || p.ConfigMap != "app-sb" || p.ConfigKey != "inject.yaml" {
		t.Errorf("plan = %+v", p)
	}
	if p, err := ParsePlan(map[string]string{AnnSecretPrefix + "x": "vault://a/b"}); p != nil || err != nil {
		t.Error("a pod without the opt-in is left alone")
	}
	if p, err := ParsePlan(map[string]string{AnnInject: "false"}); p != nil || err != nil {
		t.Error("inject: false is left alone")
	}
	// Every problem is named, all at once.
	_, err = ParsePlan(map[string]string{
		AnnInject: "true", AnnSecretPrefix + "Bad-Name": "vault://a/b", AnnSecretPrefix + "ok": "vault://",
		AnnRefresh: "10", AnnDir: "/secrets", AnnUser: "root;x", Prefix + "secret": "vault://a/b", AnnConfig: "Not_A_Name",
	})
	var inv *InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != 7 {
		t.Fatalf("err = %v", err)
	}
	for _, k := range []string{"secret-Bad-Name", "secret-ok", AnnRefresh, AnnDir, AnnUser, Prefix + "secret: unknown", AnnConfig} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("the denial does not name %s: %v", k, err)
		}
	}
	if _, err := ParsePlan(map[string]string{AnnInject: "true"}); err == nil || !strings.Contains(err.Error(), "nothing to inject") {
		t.Errorf("no secrets: %v", err)
	}
}

type fakeImages struct {
	ep, cmd []string
	err     error
	calls   atomic.Int32
}

func (f *fakeImages) Entrypoint(context.Context, string, string, []string) ([]string, []string, error) {
	f.calls.Add(1)
	return f.ep, f.cmd, f.err
}

func TestMutateExcludedAndIdempotent(t *testing.T) {
	o := Options{Image: "sb:1", Excluded: []string{"kube-system", "secretbroker"}}
	p := pod(map[string]string{AnnInject: "true", AnnSecretPrefix + "db": "vault://a/b"}, corev1.Container{Name: "app", Command: []string{"/app"}})
	for _, ns := range o.Excluded {
		if ops, err := Mutate(context.Background(), o, ns, p); ops != nil || err != nil {
			t.Errorf("%s: mutated (%v)", ns, err)
		}
	}
	ops, err := Mutate(context.Background(), o, "apps", p)
	if err != nil || len(ops) == 0 {
		t.Fatal(ops, err)
	}
	mutated := apply(t, p, ops)
	if ops, err := Mutate(context.Background(), o, "apps", mutated); ops != nil || err != nil {
		t.Error("re-admission changed the pod")
	}
	// A pod that kept our init container but lost the annotation is left too.
	delete(mutated.Annotations, AnnStatus)
	if ops, _ := Mutate(context.Background(), o, "apps", mutated); ops != nil {
		t.Error("re-admission without the status annotation changed the pod")
	}
}

func TestMutateImageLookup(t *testing.T) {
	img := &fakeImages{ep: []string{"/entry"}, cmd: []string{"serve"}}
	o := Options{Image: "sb:1", Images: img}
	p := pod(map[string]string{AnnInject: "true", AnnSecretPrefix + "db": "vault://a/b"}, corev1.Container{Name: "app", Image: "x"})
	m := apply(t, p, must(Mutate(context.Background(), o, "apps", p)))
	if c := m.Spec.Containers[0]; strings.Join(c.Command, " ") != BinDir+"/inject -- /entry" || strings.Join(c.Args, " ") != "serve" {
		t.Errorf("command %q args %q", c.Command, c.Args)
	}
	img.ep, img.cmd = nil, []string{"/only-cmd", "a"}
	m = apply(t, p, must(Mutate(context.Background(), o, "apps", p)))
	if c := m.Spec.Containers[0]; strings.Join(c.Command, " ") != BinDir+"/inject -- /only-cmd" || strings.Join(c.Args, " ") != "a" {
		t.Errorf("CMD only: command %q args %q", c.Command, c.Args)
	}
	img.err = errors.New("401 unauthorized")
	if _, err := Mutate(context.Background(), o, "apps", p); err == nil || !strings.Contains(err.Error(), `container "app" gives no command and the ENTRYPOINT of image x could not be read: 401`) {
		t.Errorf("err = %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// apply applies ops the way the API server does (they only add whole
// fields here), through JSON.
func apply(t *testing.T, p *corev1.Pod, ops []PatchOp) *corev1.Pod {
	t.Helper()
	var m map[string]any
	b, _ := json.Marshal(p)
	json.Unmarshal(b, &m)
	for _, op := range ops {
		if op.Op != "add" {
			t.Fatalf("op %s", op.Op)
		}
		parts := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		cur := m
		for _, k := range parts[:len(parts)-1] {
			cur = cur[k].(map[string]any)
		}
		vb, _ := json.Marshal(op.Value)
		var v any
		json.Unmarshal(vb, &v)
		cur[parts[len(parts)-1]] = v
	}
	b, _ = json.Marshal(m)
	var out corev1.Pod
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func review(_ testing.TB, ns string, p *corev1.Pod) []byte {
	raw, _ := json.Marshal(p)
	r := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "u-1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Namespace: ns, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}},
	}
	b, _ := json.Marshal(r)
	return b
}

func TestServer(t *testing.T) {
	var logs bytes.Buffer
	s := NewServer(Options{Image: "sb:1", Excluded: []string{"kube-system"}}, slog.New(slog.NewJSONHandler(&logs, nil)))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	post := func(body []byte) admissionv1.AdmissionReview {
		resp, err := http.Post(ts.URL+"/mutate", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out admissionv1.AdmissionReview
		json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	good := pod(map[string]string{AnnInject: "true", AnnSecretPrefix + "db": "vault://secret/app#k"}, corev1.Container{Name: "app", Command: []string{"/app"}})
	r := post(review(t, "apps", good))
	if r.Response == nil || !r.Response.Allowed || r.Response.UID != "u-1" || *r.Response.PatchType != admissionv1.PatchTypeJSONPatch || len(r.Response.Patch) == 0 {
		t.Fatalf("response = %+v", r.Response)
	}
	bad := pod(map[string]string{AnnInject: "true", AnnRefresh: "often"}, corev1.Container{Name: "app", Command: []string{"/app"}})
	r = post(review(t, "apps", bad))
	if r.Response.Allowed || !strings.Contains(r.Response.Result.Message, AnnRefresh) {
		t.Errorf("invalid annotation: %+v", r.Response)
	}
	r = post(review(t, "kube-system", good))
	if !r.Response.Allowed || r.Response.Patch != nil {
		t.Error("kube-system pod mutated")
	}
	if resp, _ := http.Post(ts.URL+"/mutate", "application/json", strings.NewReader("{")); resp.StatusCode != 400 {
		t.Errorf("garbage: %d", resp.StatusCode)
	}
	for _, p := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(ts.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", p, resp, err)
		}
		b := new(bytes.Buffer)
		b.ReadFrom(resp.Body)
		if p == "/metrics" && (!strings.Contains(b.String(), `secretbroker_webhook_admissions_total{result="denied"} 1`) || !strings.Contains(b.String(), `secretbroker_webhook_admissions_total{result="excluded"} 1`)) {
			t.Errorf("metrics:\n%s", b)
		}
	}
	// JSON logs, one object a line, naming the pod and the result.
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["result"] == nil {
			t.Errorf("log line %q", l)
		}
	}
	if strings.Contains(logs.String(), "vault://secret/app#k") {
		t.Error("a reference reached the log")
	}
}

func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	gen := func(cn string) { writeSelfSigned(t, dir, cn) }
	gen("one")
	c := &CertReloader{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: c.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go http.Serve(ln, http.NotFoundHandler())
	cn := func() string {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := cn(); got != "one" {
		t.Fatalf("served %q", got)
	}
	time.Sleep(10 * time.Millisecond)
	gen("two")
	if got := cn(); got != "two" {
		t.Errorf("after the files changed, served %q", got)
	}
	os.Remove(c.KeyFile)
	if got := cn(); got != "two" {
		t.Errorf("with the key gone, served %q (want the last good pair)", got)
	}
}

type fakeConfigMaps map[string]string // "ns/name/key" -> data

func (f fakeConfigMaps) ConfigMapKey(_ context.Context, ns, name, key string) ([]byte, error) {
	v, ok := f[ns+"/"+name+"/"+key]
	if !ok {
		return nil, errors.New(`configmaps "` + name + `" not found`)
	}
	return []byte(v), nil
}

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

// With config and refresh the broker holds the declaration and the app's
// inject fetches nothing: the webhook names the app's NAME_FILE variables
// from the ConfigMap, as the broker's declaration will.
func TestMutateConfigWithRefresh(t *testing.T) {
	cms := fakeConfigMaps{"apps/app-sb/broker.yaml": "secrets:\n  - {name: db_password, ref: \"vault://secret/app#db\"}\n  - {name: tls, ref: \"vault://secret/app#tls\", env: TLS_KEY_PATH}\n  - {name: quiet, ref: \"vault://secret/app#q\", env: \"\"}\n"}
	o := Options{Image: "sb:1", ConfigMaps: cms}
	ann := map[string]string{AnnInject: "true", AnnConfig: "app-sb", AnnRefresh: "1m", AnnSecretPrefix + "api_key": "aws-sm://prod/api#key"}
	p := pod(ann, corev1.Container{Name: "app", Command: []string{"/app"}})
	m := apply(t, p, must(Mutate(context.Background(), o, "apps", p)))
	app := envOf(m.Spec.Containers[0])
	want := map[string]string{
		"DB_PASSWORD_FILE": DefaultDir + "/db_password",
		"TLS_KEY_PATH":     DefaultDir + "/tls",
		"API_KEY_FILE":     DefaultDir + "/api_key",
	}
	if len(app) != len(want) {
		t.Errorf("app env = %v, want %v", app, want)
	}
	for k, v := range want {
		if app[k] != v {
			t.Errorf("app %s = %q, want %q (env %v)", k, app[k], v, app)
		}
	}
	b := m.Spec.InitContainers[1]
	if env := envOf(b); env["INJECT_CONFIG"] != ConfigDir+"/"+DefaultConfigKey || env["API_KEY"] != "aws-sm://prod/api#key" {
		t.Errorf("broker env = %v", env)
	}

	// Every way it cannot be done denies the pod, naming the ConfigMap.
	for _, tc := range []struct {
		name string
		o    Options
		data string
		want string
	}{
		{"no reader", Options{Image: "sb:1"}, "", "this webhook reads no ConfigMaps"},
		{"missing", Options{Image: "sb:1", ConfigMaps: fakeConfigMaps{}}, "", `ConfigMap apps/app-sb key broker.yaml could not be read (with secretbroker.io/refresh the webhook names the app's NAME_FILE variables from it): configmaps "app-sb" not found`},
		{"invalid", o, "secrets:\n  - {name: x, ref: \"valut://a\"}\n", "ConfigMap apps/app-sb key broker.yaml: the declaration has 1 problem(s): secrets[0].ref"},
		{"collision", o, "secrets:\n  - {name: api_key, ref: \"vault://a#b\"}\n", `secret file "api_key" is also declared`},
		{"expose_as", o, "secrets:\n  - {name: x, ref: \"vault://a#b\", expose_as: X}\n", "secrets[0] asks for expose_as, which a broker sidecar"},
	} {
		oo := tc.o
		if tc.data != "" {
			oo.ConfigMaps = fakeConfigMaps{"apps/app-sb/broker.yaml": tc.data}
		}
		_, err := Mutate(context.Background(), oo, "apps", p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// A Job's pod gets the same native sidecar as any other: the kubelet stops
// it when the Job's containers end, so nothing needs --exit-when.
func TestMutateJobPod(t *testing.T) {
	p := pod(map[string]string{AnnInject: "true", AnnSecretPrefix + "db": "vault://a/b", AnnRefresh: "1m"}, corev1.Container{Name: "job", Command: []string{"/job"}})
	p.Labels = map[string]string{"batch.kubernetes.io/job-name": "report"}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "report"}}
	m := apply(t, p, must(Mutate(context.Background(), Options{Image: "sb:1"}, "apps", p)))
	b := m.Spec.InitContainers[1]
	if b.RestartPolicy == nil || *b.RestartPolicy != corev1.ContainerRestartPolicyAlways || len(b.Args) != 0 {
		t.Errorf("job broker: restartPolicy %v args %q", b.RestartPolicy, b.Args)
	}
}

// deadlineConfigMaps records the deadline of the context Mutate reads with.
type deadlineConfigMaps struct{ got chan time.Duration }

func (d deadlineConfigMaps) ConfigMapKey(ctx context.Context, _, _, _ string) ([]byte, error) {
	if dl, ok := ctx.Deadline(); ok {
		d.got <- time.Until(dl)
	} else {
		d.got <- -1
	}
	return []byte("secrets:\n  - {name: a, ref: \"vault://s/a#k\"}\n"), nil
}

// The API server states its timeout in the URL (?timeout=5s) and gives up
// when it passes: the webhook's work on the pod ends before that, and is
// bounded when no timeout (or a malformed one) is stated. The handler's
// context carries that deadline (only an upper bound is asserted, so a
// slow machine cannot fail it).
func TestAnswerWithinTheAPIServersTimeout(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  time.Duration
	}{
		{"?timeout=5s", 4500 * time.Millisecond},
		{"?timeout=1s", 900 * time.Millisecond},
		{"?timeout=30s", maxAnswer},
		{"", maxAnswer},
		{"?timeout=soon", maxAnswer},
		{"?timeout=-5s", maxAnswer},
		{"?timeout=0s", maxAnswer},
	} {
		r := httptest.NewRequest("POST", "/mutate"+tc.query, nil)
		if got := answerWithin(r); got != tc.want {
			t.Errorf("%q: answerWithin = %v, want %v", tc.query, got, tc.want)
		}
		cms := deadlineConfigMaps{got: make(chan time.Duration, 1)}
		ts := httptest.NewServer(NewServer(Options{Image: "sb:1", ConfigMaps: cms}, slog.New(slog.DiscardHandler)).Handler())
		p := pod(map[string]string{AnnInject: "true", AnnConfig: "app-sb", AnnRefresh: "1m"}, corev1.Container{Name: "app", Command: []string{"/app"}})
		resp, err := http.Post(ts.URL+"/mutate"+tc.query, "application/json", bytes.NewReader(review(t, "apps", p)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ts.Close()
		if d := <-cms.got; d < 0 || d > tc.want {
			t.Errorf("%q: Mutate's deadline is %v away, want a deadline within %v", tc.query, d, tc.want)
		}
	}
}
